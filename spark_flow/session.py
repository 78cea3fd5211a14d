"""SparkSession factory: named profiles from `conf/`, overrides, Delta backend selection."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from spark_flow import _connect, storage
from spark_flow._jvm_session import start_session
from spark_flow._resources import shipped_dirs
from spark_flow.delta import enable_delta
from spark_flow.errors import ConfigError, InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

PROFILE_ENV = "SPARK_FLOW_PROFILE"
CONF_DIR_ENV = "SPARK_FLOW_CONF_DIR"
_PROFILE_KEYS = {"master", "spark", "delta", "state", "postgres", "storage"}
_DELTA_KEYS = {"backend", "packages"}
_STATE_KEYS = {"location"}
_POSTGRES_KEYS = {"dsn", "host", "port", "dbname", "user"}
DEFAULT_STATE_LOCATION = "data/spark_flow_state"


@dataclass(frozen=True)
class Profile:
    """A named set of Spark settings read from `<conf dir>/<name>.toml`.

    `delta_packages` (`[delta] packages = true`, with `backend = "jvm"`): Spark fetches the
    delta-spark JARs from Maven when the session starts (the `jvm` extra's delta-spark).
    `postgres` is the profile's `[postgres]` table as written (`dsn`, `host`, `port`, `dbname`,
    `user`): where `output_writer("postgres")` connects (`spark_flow.postgres`).
    `storage` is its `[storage]` table: how object stores are reached (`spark_flow.storage`).
    """

    name: str
    source: Path
    master: str | None = None
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    delta_backend: str = "auto"
    delta_packages: bool = False
    state_location: str = DEFAULT_STATE_LOCATION
    postgres: Mapping[str, Any] = field(default_factory=dict)
    storage: storage.StorageSettings = field(default_factory=storage.StorageSettings)


def conf_dirs() -> list[Path]:
    """Where profiles are looked up: $SPARK_FLOW_CONF_DIR, the package's copy, the checkout's."""
    return shipped_dirs(CONF_DIR_ENV, "conf", "conf")


def load_profile(name: str) -> Profile:
    """Read a profile by name (`local`, `cluster`) or by the path of a `.toml` file.

    Raises:
        ConfigError: the profile does not exist or has unknown keys.
    """
    candidates = (
        [Path(name)] if name.endswith(".toml") else [d / f"{name}.toml" for d in conf_dirs()]
    )
    source = next((p for p in candidates if p.is_file()), None)
    if source is None:
        known = sorted({p.stem for d in conf_dirs() for p in d.glob("*.toml")})
        raise ConfigError(
            f"profile {name!r}",
            f"no such profile; looked in {[str(p.parent) for p in candidates]}",
            f"Use one of {known}, a path to a .toml file, or set ${CONF_DIR_ENV}.",
        )
    with source.open("rb") as handle:
        raw: dict[str, Any] = tomllib.load(handle)
    _reject_unknown(source, "", raw, _PROFILE_KEYS)
    delta = raw.get("delta", {})
    _reject_unknown(source, "delta.", delta, _DELTA_KEYS)
    state = raw.get("state", {})
    _reject_unknown(source, "state.", state, _STATE_KEYS)
    postgres = raw.get("postgres", {})
    if "password" in postgres:
        raise ConfigError(
            str(source),
            "[postgres] holds a password; profiles are shared files, not secret stores",
            "Remove it and set PGPASSWORD, or add the server to ~/.pgpass: libpq reads both.",
        )
    _reject_unknown(source, "postgres.", postgres, _POSTGRES_KEYS)
    settings = _storage_settings(source, raw.get("storage", {}))
    packages = delta.get("packages", False)
    if not isinstance(packages, bool) or (packages and delta.get("backend") != "jvm"):
        raise ConfigError(
            str(source),
            f'[delta] packages = {packages!r}: expected true (with backend = "jvm") or false',
            'Write packages = true under backend = "jvm" to fetch delta-spark\'s JARs from Maven.',
        )
    conf_dir = str(source.parent.resolve())
    spark_conf = {
        str(key): str(value).replace("{conf_dir}", conf_dir)
        for key, value in raw.get("spark", {}).items()
    }
    return Profile(
        name=source.stem,
        source=source,
        master=raw.get("master"),
        spark_conf=spark_conf,
        delta_backend=str(delta.get("backend", "auto")),
        delta_packages=packages,
        state_location=str(state.get("location", DEFAULT_STATE_LOCATION)),
        postgres=dict(postgres),
        storage=settings,
    )


def _storage_settings(source: Path, table: Mapping[str, Any]) -> storage.StorageSettings:
    """The profile's `[storage]` table, checked: unknown keys and bad values name the file."""
    _reject_unknown(source, "storage.", table, {f.name for f in fields(storage.StorageSettings)})
    try:
        return storage.StorageSettings(**table)
    except InvalidArgumentError as exc:
        raise ConfigError(str(source), f"[storage] {exc.argument}: {exc.problem}", exc.fix) from exc


def _reject_unknown(source: Path, prefix: str, table: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            str(source),
            f"unknown keys {[prefix + k for k in unknown]}",
            f"Known keys are {sorted(prefix + k for k in known)}; Spark confs go under [spark].",
        )


def profile_name(requested: str | None = None) -> str:
    """The profile to use: the one asked for, else `$SPARK_FLOW_PROFILE`, else `local`."""
    return requested or os.environ.get(PROFILE_ENV) or "local"


def get_session(
    app_name: str,
    profile: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or join) a SparkSession from a profile, with Delta enabled.

    Under `spark-submit`, what the command line set wins over the profile: the profile fills
    in only what is not set yet. `conf` always wins.

    With a Spark Connect URL (`spark.remote` in the profile or `conf`, else `$SPARK_REMOTE`)
    it joins that server instead: no master, the settings the server accepts at runtime are
    set, the others logged by name. `spark.api.mode = "connect"` without a URL starts a local
    Connect server from the profile's master, as pyspark does.

    Args:
        app_name: the application name shown in the UI and logs.
        profile: profile name or `.toml` path; default `$SPARK_FLOW_PROFILE`, else `local`.
        conf: Spark confs that override the profile.

    Returns:
        The session, with a Delta backend chosen (`spark_flow.delta.backend(spark)`).

    Raises:
        ConfigError: the profile does not exist or has unknown keys.
        ConnectServerError: nothing answers at the Connect URL.

    Example:
        >>> spark = get_session("devices-loader", conf={"spark.sql.shuffle.partitions": "8"})
    """
    chosen = load_profile(profile_name(profile))
    settings = {**chosen.spark_conf, **(conf or {})}
    storage.configure(chosen.storage)
    url = _connect.remote_url(settings)
    if url is not None:
        return _join_connect(app_name, chosen, url, settings)
    submitted = _submitted_conf()
    builder = SparkSession.builder.appName(app_name)
    if chosen.master and "spark.master" not in submitted:
        builder = builder.master(chosen.master)
    defaults = dict(chosen.spark_conf)
    if "PYSPARK_PYTHON" not in os.environ and not submitted:
        # Python workers (UDFs, the `delta` data source's planner) must import what the driver
        # imports: run them on this interpreter, not on whatever `python3` is first on PATH.
        # The data-source planner reads only the environment of the JVM we are about to start.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        defaults.setdefault("spark.pyspark.python", sys.executable)
    for key, value in defaults.items():
        if key not in submitted:
            builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = start_session(builder, packages=chosen.delta_packages, source=chosen.source)
    log.info("Spark session %r from profile %s (%s)", app_name, chosen.name, chosen.source)
    enable_delta(spark, chosen.delta_backend)
    return spark


def _join_connect(
    app_name: str, chosen: Profile, url: str, settings: dict[str, str]
) -> SparkSession:
    """A Spark Connect session: the server runs Spark, so the profile's master does not apply."""
    spark = _connect.join(url, settings)
    log.info(
        "Spark Connect session for %r on %s from profile %s (%s)",
        app_name,
        _connect.shown(url),
        chosen.name,
        chosen.source,
    )
    try:
        enable_delta(spark, chosen.delta_backend)
    except BaseException:
        # Unusable (e.g. its Python workers cannot import spark_flow): released now, while the
        # server answers, not by pyspark at exit, which retries a gone server for minutes.
        spark.stop()
        raise
    return spark


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session, False for a classic one (a JVM in this process)."""
    return _connect.is_connect(spark)


def _submitted_conf() -> dict[str, str]:
    """Confs set by `spark-submit` when it launched this Python process; empty otherwise."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


@contextmanager
def job_description(spark: SparkSession, text: str) -> Iterator[None]:
    """Label the Spark jobs this thread starts inside the block (the UI's job description).

    Classic sessions set the thread's job description; Spark Connect has none, so its sessions
    get the text as an operation tag instead (`spark.getTags()`), usable with `interruptTag`.
    """
    context = getattr(spark, "_sc", None)
    if context is None:
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
        spark.addTag(tag)
        try:
            yield
        finally:
            spark.removeTag(tag)
        return
    previous = context.getLocalProperty("spark.job.description")
    context.setJobDescription(text)
    try:
        yield
    finally:
        context.setLocalProperty("spark.job.description", previous)


@contextmanager
def cancellable(spark: SparkSession, tag: str) -> Iterator[None]:
    """Tag the Spark jobs this thread starts inside the block, so `cancel(spark, tag)` stops them.

    Classic sessions use SparkContext job tags: `SparkSession.interruptTag` there only finds
    tags added by the calling thread, and cancelling is done from another thread.
    """
    context = getattr(spark, "_sc", None)
    if context is None:
        spark.addTag(tag)
    else:
        context.addJobTag(tag)
        context.setInterruptOnCancel(True)
    try:
        yield
    finally:
        if context is None:
            spark.removeTag(tag)
        else:
            context.removeJobTag(tag)


def cancel(spark: SparkSession, tag: str) -> None:
    """Cancel the running Spark jobs started inside `cancellable(spark, tag)`, from any thread."""
    context = getattr(spark, "_sc", None)
    if context is None:
        spark.interruptTag(tag)
    else:
        context.cancelJobsWithTag(tag)


@contextmanager
def scheduler_pool(spark: SparkSession, pool: str) -> Iterator[None]:
    """Run this thread's jobs in FAIR scheduler pool `pool`, when the session schedules FAIR.

    Under the default FIFO mode (and on Spark Connect, which has no pools) it does nothing.
    """
    context = getattr(spark, "_sc", None)
    if context is None or spark.conf.get("spark.scheduler.mode", "FIFO") != "FAIR":
        yield
        return
    context.setLocalProperty("spark.scheduler.pool", pool)
    try:
        yield
    finally:
        context.setLocalProperty("spark.scheduler.pool", None)
