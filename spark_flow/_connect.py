"""Joining a Spark Connect server: the session side of `get_session` for `sc://` URLs.

A Connect session is a client of a server that was configured when it started: it has no
master of its own, and only the settings the server accepts at runtime can be set from here
(SQL settings such as `spark.sql.shuffle.partitions`). The others (`spark.ui.enabled`,
`spark.sql.warehouse.dir`, JVM options ...) are the server's; they are logged by name, never
dropped silently as pyspark's own builder does.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from spark_flow.errors import ConnectServerError, MissingDependencyError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.session import SparkSession as ConnectSession

log = logging.getLogger(__name__)

REMOTE_ENV = "SPARK_REMOTE"
# pyspark builds Spark Connect columns in `pyspark.sql.functions` only while this is set; its
# own builder sets it too when it returns a Connect session.
MODE_ENV = "SPARK_CONNECT_MODE_ENABLED"
DEFAULT_PORT = 15002
# Settings that choose or launch a process, meaningless to a server that is already running.
_LAUNCH_SETTINGS = {
    "spark.master",
    "spark.remote",
    "spark.api.mode",
    "spark.pyspark.python",
    "spark.pyspark.driver.python",
}
# How long the server's port may take to accept a connection before it counts as not answering.
_ANSWER_TIMEOUT_S = 10.0
_REFUSED = ("CANNOT_MODIFY_CONFIG", "CANNOT_MODIFY_STATIC_CONFIG")


def remote_url(settings: Mapping[str, str]) -> str | None:
    """The `sc://` URL a session should join: `spark.remote`, else `$SPARK_REMOTE`; or None."""
    return settings.get("spark.remote") or os.environ.get(REMOTE_ENV) or None


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session (no JVM in this process), False for a classic one."""
    return getattr(spark, "_jsparkSession", None) is None


def shown(url: str) -> str:
    """`url` without its `;key=value` parameters: they may carry a token."""
    return url.split(";", 1)[0].rstrip("/")


def join(url: str, settings: Mapping[str, str]) -> SparkSession:
    """A session on the Connect server at `url`, with the `settings` the server takes set.

    Reuses this process's session on the same URL while it is open.

    Raises:
        MissingDependencyError: the `connect` extra is not installed.
        ConnectServerError: nothing answers at `url`.
    """
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError as exc:
        raise MissingDependencyError("a Spark Connect session", "grpcio", "connect") from exc
    host, port = _address(url)
    try:
        socket.create_connection((host, port), timeout=_ANSWER_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectServerError(
            shown(url),
            f"nothing answered on {host}:{port} ({exc})",
            f"Start the server, or correct spark.remote / ${REMOTE_ENV}; unset both for a "
            "classic session",
        ) from exc
    os.environ[MODE_ENV] = "1"
    spark = _sessions.get(url)
    if spark is None or spark.is_stopped:
        spark = _sessions[url] = ConnectSession.builder.remote(url).create()
    session = cast("SparkSession", spark)  # the Connect class implements SparkSession's API
    set_settings(session, settings)
    return session


# One session per server URL and process, as getOrCreate keeps one per process.
_sessions: dict[str, ConnectSession] = {}


def _address(url: str) -> tuple[str, int]:
    # Connect URLs are `sc://host:port/;key=value`: parsed as http, like pyspark does.
    bare = shown(url)
    try:
        parsed = urllib.parse.urlparse("http" + bare[2:]) if bare.startswith("sc://") else None
        if parsed is not None and parsed.hostname:
            return parsed.hostname, parsed.port or DEFAULT_PORT
    except ValueError:  # a port that is not a number
        pass
    raise ConnectServerError(
        bare,
        "the URL is not of the form sc://host:port",
        "Set spark.remote or $SPARK_REMOTE to e.g. sc://127.0.0.1:15002",
    )


def set_settings(spark: SparkSession, settings: Mapping[str, str]) -> list[str]:
    """Set each of `settings` the server does not hold yet; the names it refused (logged).

    A running server keeps its static and core settings; they are set where it starts, so
    they are named in a warning rather than dropped unnoticed.
    """
    from pyspark.errors import AnalysisException

    current = spark.conf.getAll
    ignored = sorted(k for k in settings if k in _LAUNCH_SETTINGS and k != "spark.remote")
    if ignored:
        log.info("Spark Connect session: %s do not apply to a running server", ignored)
    refused = []
    for key, value in settings.items():
        if key in _LAUNCH_SETTINGS or current.get(key) == value:
            continue
        try:
            spark.conf.set(key, value)
        except AnalysisException as exc:
            if exc.getCondition() not in _REFUSED:
                raise
            refused.append(key)
    if refused:
        log.warning(
            "the Spark Connect server keeps its own values of %s (fixed when it started); "
            "set them when the server starts if they matter",
            refused,
        )
    return refused
