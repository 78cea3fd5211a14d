"""`spark-flow submit`: spark-submit of a bundled job from any shell, with the right Spark.

pyspark's own `spark-submit` launcher finds `SPARK_HOME` by running the first `python3` on
`PATH`; in a shell where the virtualenv is not activated that Python has no pyspark and the
launcher fails (`/bin/spark-class: No such file or directory`). `submit` runs the installed
pyspark's `bin/spark-submit` with `SPARK_HOME` set, and the driver's and executors' Python set
to this interpreter (the one that has spark_flow and its dependencies).

A job bound for a cluster (a master other than `local[...]`) takes spark_flow with it: a zip
of the package, laid out as the wheel is (`spark_flow/conf`, `spark_flow/_jobs`), goes on
`--py-files`, so executors import it without an install of their own.

The profile's `master` reaches spark-submit as `--master` where nothing else names one:
spark-submit runs `local[*]` when neither its command line nor its defaults name a master, and
a session it started cannot tell that default from a `--master local[*]` typed by the user.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_flow._command_line import pop_option
from spark_flow._resources import PACKAGE, package_root, walk
from spark_flow.errors import ConfigError, InvalidArgumentError
from spark_flow.jobs import resolve
from spark_flow.session import PROFILE_ENV, load_profile, profile_name

__all__ = [
    "package_to_ship",
    "package_zip",
    "spark_home",
    "submit",
    "submit_command",
    "submit_environment",
]

log = logging.getLogger(__name__)

SPARK_HOME_ENV = "SPARK_HOME"
_PYTHON_CONF = "spark.pyspark.python"
_DRIVER_PYTHON_CONF = "spark.pyspark.driver.python"
_MASTER_CONF = "spark.master"
# (in the package, in a checkout): as pyproject's wheel build force-includes them.
_SHIPPED = (("conf", "conf"), ("_jobs", "jobs"))


def spark_home(environ: Mapping[str, str] | None = None) -> Path:
    """The Spark to submit with: `$SPARK_HOME` when set, else the installed pyspark's folder.

    Raises:
        ConfigError: that folder has no `bin/spark-submit` or no `jars`.
    """
    environ = os.environ if environ is None else environ
    if environ.get(SPARK_HOME_ENV):
        home, source = Path(environ[SPARK_HOME_ENV]), f"${SPARK_HOME_ENV}"
        fix = f"Unset {SPARK_HOME_ENV} to use the installed pyspark's, or point it at a Spark 4."
    else:
        import pyspark

        home, source = Path(pyspark.__file__).parent, "the installed pyspark"
        fix = "Reinstall pyspark (pip install --force-reinstall pyspark) in this environment."
    if not ((home / "bin" / "spark-submit").is_file() and (home / "jars").is_dir()):
        raise ConfigError(
            source,
            f"expected a Spark installation (bin/spark-submit and jars/) at {str(home)!r}, "
            "found none",
            fix,
        )
    return home


def package_zip(folder: Path) -> Path:
    """A zip of spark_flow, its profiles and its bundled jobs, for `--py-files`; its path.

    The layout is the wheel's, so code imported from the zip finds its profiles and jobs the
    way an installed wheel does (`spark_flow._resources`).
    """
    target = folder / f"{PACKAGE}.zip"
    root = package_root()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, entry in walk(root):
            archive.writestr(f"{PACKAGE}/{relative}", entry.read_bytes())
        # A checkout keeps them beside the package, where the wheel (and this zip) has them inside.
        for in_package, in_checkout in _SHIPPED:
            beside = root.parent / in_checkout if isinstance(root, Path) else None
            if not (root / in_package).is_dir() and beside is not None and beside.is_dir():
                for relative, entry in walk(beside):
                    archive.writestr(f"{PACKAGE}/{in_package}/{relative}", entry.read_bytes())
    return target


def package_to_ship(
    spark_options: Sequence[str], folder: Path, profile: str | None = None
) -> Path | None:
    """spark_flow's zip (`package_zip`) written into `folder` when the submission runs on a
    master other than `local[...]`: the one spark-submit's command line or defaults name, else
    the profile's. None where it runs on this machine.

    Raises:
        ConfigError: the profile does not exist or has unknown keys.
    """
    master = _named_master(spark_options, os.environ) or load_profile(profile_name(profile)).master
    if master is None or master.startswith("local"):
        return None
    return package_zip(folder)


def _named_master(spark_options: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The master spark-submit takes from its command line or its defaults, in its order:
    `--master`, `--conf spark.master=`, the properties file, `$MASTER`; None where none names
    one (spark-submit then runs `local[*]`)."""
    confs = [conf.split("=", 1) for conf in pop_option(spark_options, "--conf")[0] if "=" in conf]
    named = pop_option(spark_options, "--master")[0] or [
        value.strip() for key, value in confs if key.strip() == _MASTER_CONF
    ]
    if named:
        return named[-1]  # as spark-submit, the last one given
    return _defaults(spark_options, environ).get(_MASTER_CONF) or environ.get("MASTER")


def _defaults(spark_options: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The properties file spark-submit reads: `--properties-file`, else `spark-defaults.conf`
    in `$SPARK_CONF_DIR` or `$SPARK_HOME/conf`."""
    named = pop_option(spark_options, "--properties-file")[0]
    folder = Path(environ.get("SPARK_CONF_DIR") or spark_home(environ) / "conf")
    source = Path(named[-1]) if named else folder / "spark-defaults.conf"
    try:
        lines = source.read_text().splitlines()
    except OSError:  # none: spark-submit reads none either
        return {}
    # Java properties: `key value`, `key=value` or `key: value`; `#` and `!` start comments.
    pairs = (
        re.split(r"\s*[\s=:]\s*", line.strip(), maxsplit=1)
        for line in lines
        if line.strip() and not line.strip().startswith(("#", "!"))
    )
    return {pair[0]: pair[1].strip() if len(pair) > 1 else "" for pair in pairs}


def submit_command(
    script: Path,
    spark_options: Sequence[str],
    job_args: Sequence[str],
    *,
    ship: Path | None = None,
    profile: str | None = None,
) -> list[str]:
    """The spark-submit command line: options, `ship` added to `--py-files`, script, job args.

    The profile's master is passed as `--master` where nothing else names one
    (see the module docstring). Executors told to use another Python (`--conf
    spark.pyspark.python=./env/bin/python`, an archive's) leave the driver on this one: Spark
    would otherwise start the driver with it too.
    """
    if _named_master(spark_options, os.environ) is None:
        master = load_profile(profile_name(profile)).master
        spark_options = [*spark_options] if master is None else ["--master", master, *spark_options]
    py_files, options = pop_option(spark_options, "--py-files")
    if ship is not None:
        py_files.append(str(ship))
    if py_files:
        options += ["--py-files", ",".join(py_files)]
    confs = [v.split("=", 1)[0] for v in pop_option(spark_options, "--conf")[0]]
    if _PYTHON_CONF in confs and _DRIVER_PYTHON_CONF not in confs:
        options += ["--conf", f"{_DRIVER_PYTHON_CONF}={sys.executable}"]
    return [str(spark_home() / "bin" / "spark-submit"), *options, str(script), *job_args]


def submit(
    job: str,
    spark_options: Sequence[str] = (),
    job_args: Sequence[str] = (),
    *,
    profile: str | None = None,
) -> int:
    """Submit bundled job `job` (or a script's path) with spark-submit; its exit code.

    Args:
        job: a bundled job's name (`spark-flow jobs`) or the path of a `.py` script.
        spark_options: spark-submit's options, e.g. `["--master", "spark://host:7077"]`.
        job_args: the job's own arguments.
        profile: the profile the job's session reads; default `$SPARK_FLOW_PROFILE`, else local.

    Raises:
        UnknownValueError: no bundled job has that name.
        InvalidArgumentError: a path that is not a script.
        ConfigError: no Spark installation to submit with.
    """
    script = _script(job)
    load_profile(profile_name(profile))  # a misspelt profile is refused before Spark starts
    with tempfile.TemporaryDirectory(prefix="spark-flow-submit-") as folder:
        ship = package_to_ship(spark_options, Path(folder), profile)
        command = submit_command(script, spark_options, job_args, ship=ship, profile=profile)
        environment = submit_environment(profile)
        log.info("spark-submit from %s: %s", environment[SPARK_HOME_ENV], command)
        return subprocess.run(command, env=environment, check=False).returncode


def submit_environment(profile: str | None = None) -> dict[str, str]:
    """The environment `spark-submit` runs in: this process's, with the Spark to use
    (`spark_home()`), this interpreter for the driver and executors, and the profile.

    Raises:
        ConfigError: no Spark installation to submit with.
    """
    return {
        **os.environ,
        SPARK_HOME_ENV: str(spark_home()),
        # Not the first python3 on PATH: this one has spark_flow and its dependencies.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        PROFILE_ENV: profile_name(profile),
    }


def _script(job: str) -> Path:
    if not job.endswith(".py"):
        return resolve(job)
    script = Path(job)
    if not script.is_file():
        raise InvalidArgumentError(
            "JOB", f"expected a bundled job's name or a .py script, found no file at {job!r}",
            "Check the path, or run `spark-flow jobs` for the bundled jobs.",
        )  # fmt: skip
    return script
