"""Bundled jobs: finding them by name, their typed reports, and the one way a run ends.

Jobs live in `jobs/` (or `$SPARK_FLOW_JOBS_DIR`) as plain scripts, so `spark-submit jobs/x.py`
works; the wheel carries them as package resources (`spark_flow._resources`). `spark-flow run x`,
`spark-flow submit x` and task-based triggers find them by name. spark_flow never imports
them statically: `jobs/` depends on spark_flow, not the reverse.

Every run ends the same way whoever started it: `run_and_report` times it, catches and renders
its failure, prints the one-line JSON report, triggers the next job and stops Spark. `job_main`
(`spark-submit jobs/x.py`) and `spark-flow run x` both go through it, so a failure reads the
same in both. A job's `run(spark, args)` returns a typed report (a `JobReport`).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from spark_flow._common import error_summary, failure_details, one_line
from spark_flow._resources import shipped_dirs
from spark_flow.arguments import location_named_in
from spark_flow.errors import (
    ArgumentLocationError,
    InvalidArgumentError,
    SparkFlowError,
    UnknownValueError,
)
from spark_flow.runners import RunPolicy, expand

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_flow.status import Status

__all__ = [
    "MERGED",
    "JobReport",
    "LazySession",
    "Reportable",
    "add_trigger_argument",
    "available_jobs",
    "check_triggered",
    "describe",
    "job_arguments",
    "job_main",
    "load",
    "policy",
    "report_of",
    "resolve",
    "run_and_report",
    "run_for_report",
    "run_job",
    "split_at_double_dash",
]

log = logging.getLogger(__name__)

JOBS_DIR_ENV = "SPARK_FLOW_JOBS_DIR"
# `field(metadata=MERGED)`: the field's keys go into the report itself, not under its name.
MERGED: Mapping[str, bool] = {"merged": True}
_SUCCESS: Status = "success"
_FAILED: Status = "failed"


# -- finding jobs --------------------------------------------------------------------------------


def jobs_dirs() -> list[Path]:
    """Where bundled jobs are looked up: $SPARK_FLOW_JOBS_DIR, the package's, the checkout's."""
    return shipped_dirs(JOBS_DIR_ENV, "_jobs", "jobs")


def available_jobs() -> dict[str, Path]:
    """Job name -> script, first folder wins; `_modules` are what jobs share, not jobs."""
    found: dict[str, Path] = {}
    for folder in jobs_dirs():
        for script in sorted(folder.glob("*.py")):
            if not script.name.startswith("_"):
                found.setdefault(script.stem, script)
    return found


def resolve(name: str) -> Path:
    """The script of job `name`, or UnknownValueError listing the jobs that exist."""
    jobs = available_jobs()
    if name not in jobs:
        raise UnknownValueError("job", name, sorted(jobs))
    return jobs[name]


def describe(name: str) -> str:
    """The first line of the job's module docstring, read without importing it."""
    docstring = ast.get_docstring(ast.parse(resolve(name).read_text())) or ""
    return docstring.splitlines()[0] if docstring else ""


def load(name: str) -> ModuleType:
    """Import job `name` from its script (each call loads it afresh)."""
    from pyspark import cloudpickle

    script = resolve(name)
    # Jobs share modules kept beside them (`_schemas`, `_recipes`): put their folder on the
    # path, as `spark-submit jobs/<job>.py` does for the script's own folder.
    if str(script.parent) not in sys.path:
        sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(f"spark_flow_job_{name}", script)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise UnknownValueError("job", name, sorted(available_jobs()))
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses (a job's typed report) look
    # their module up by name. Executors (and a Connect server) cannot import it by that name,
    # so functions it defines still travel by value, as they did when it was not registered.
    sys.modules[spec.name] = module
    cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
    spec.loader.exec_module(module)
    return module


def policy(name: str) -> RunPolicy:
    """The run policy job `name` declares as `POLICY` (default: independent runs)."""
    declared = getattr(load(name), "POLICY", RunPolicy())
    return declared if isinstance(declared, RunPolicy) else RunPolicy()


# -- a job's arguments and report ----------------------------------------------------------------


def split_at_double_dash(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """`argv` before the first `--`, and after it (the arguments passed on to another job).

    Example:
        >>> split_at_double_dash(["--input", "x", "--", "--output", "y"])
        (['--input', 'x'], ['--output', 'y'])
    """
    arguments = list(argv)
    if "--" not in arguments:
        return arguments, []
    at = arguments.index("--")
    return arguments[:at], arguments[at + 1 :]


def job_arguments(module: ModuleType, argv: Sequence[str], day: date) -> argparse.Namespace:
    """A loaded job's own arguments for `day`: `{ds}` macros expanded, those after `--` left out.

    argparse exits 2 on a bad argument, before any lock is taken or any Spark job runs.
    """
    own, _ = split_at_double_dash(expand(argv, day))
    args: argparse.Namespace = module.parser().parse_args(own)
    return args


def _job_name(value: str) -> str:
    try:
        resolve(value)
    except UnknownValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_trigger_argument(parser: argparse.ArgumentParser) -> None:
    """`--trigger JOB`: run JOB after this job succeeded, with the arguments after `--`.

    The name is checked when the arguments are parsed, before any work: renaming a consumer
    breaks its producer at once and clearly, not after an hour of processing.
    """
    parser.add_argument(
        "--trigger",
        type=_job_name,
        metavar="JOB",
        help="bundled job to run after this one succeeds; its arguments follow `--`",
    )


def check_triggered(trigger: str | None, argv: Sequence[str]) -> None:
    """Parse the arguments of every job down a `--trigger` chain, before the first one runs.

    `argv` is what follows the first `--`: the triggered job's arguments, and after its own
    `--` those of the job it triggers. A bad one exits 2 (argparse) now, not once the jobs
    before it have done their work. A job without a `parser()` checks its own when it runs.
    """
    while trigger:
        own, argv = split_at_double_dash(argv)
        parser = getattr(load(trigger), "parser", None)
        if parser is None:
            return
        trigger = getattr(parser().parse_args(own), "trigger", None)


class Reportable(Protocol):
    """What a job's `run(spark, args)` returns: anything that says itself as one JSON object."""

    def as_dict(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class JobReport:
    """Base of a bundled job's typed report: its fields are the keys of the job's JSON line.

    `as_dict` gives the fields in order; a value with its own `as_dict` (a split's report, an
    exclusive choice) is given as that, and a field declared `field(metadata=MERGED)` (e.g. a
    Delta write's summary) has its keys merged in its place, so the JSON line stays flat.
    """

    def as_dict(self) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for spec in fields(self):
            value = _plain(getattr(self, spec.name))
            if spec.metadata.get("merged"):
                report.update(value)
            else:
                report[spec.name] = value
        return report


def _plain(value: object) -> Any:
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    return dict(value) if isinstance(value, Mapping) else value


def report_of(job: str, report: object) -> dict[str, Any]:
    """The JSON object of what job `job`'s `run` returned (InvalidArgumentError if it cannot)."""
    as_dict = getattr(report, "as_dict", None)
    if not callable(as_dict):
        raise InvalidArgumentError(
            f"{job}.run",
            f"it returned a {type(report).__name__}, which has no as_dict()",
            "Return a JobReport (spark_flow.jobs), or any object with an as_dict() method.",
        )
    return dict(as_dict())


def run_for_report(
    job: str,
    run: Callable[[SparkSession, argparse.Namespace], Reportable],
    spark: SparkSession,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """`run(spark, args)`'s report as a JSON object; a failure on a location names its argument.

    Spark says `[PATH_NOT_FOUND] Path does not exist: file:/...`, not which of the job's
    arguments that is: an error of ours whose text names an argument's location is raised as an
    `ArgumentLocationError` naming the argument, with Spark's line as its cause. Our own errors
    already say what to do and pass unchanged.

    Raises:
        ArgumentLocationError: the run failed on a location one of `args` names.
    """
    try:
        return report_of(job, run(spark, args))
    except SparkFlowError:
        raise
    except Exception as exc:
        cause = error_summary(exc)
        named = location_named_in(str(exc), args)
        if named is None:
            raise
        argument, location = named
        if _not_found(exc):
            problem = "expected an existing file or folder, found nothing there"
            fix = "It was there when the job started: check what moved or removed it, and rerun."
        else:
            problem = "the run failed on this location"
            fix = "Check that it holds what the job expects and that the job may read and write it."
        raise ArgumentLocationError(argument, location, problem, fix, cause) from exc


def _not_found(exc: Exception) -> bool:
    # Spark's error condition (an AnalysisException), or the JVM's exception through Py4J.
    text = str(exc)
    return isinstance(exc, FileNotFoundError) or any(
        marker in text for marker in ("PATH_NOT_FOUND", "FileNotFoundException")
    )


# -- one run, start to end ---------------------------------------------------------------------


class LazySession:
    """A Spark session started on first use, stopped by `stop()` if it was started.

    `spark-flow run` starts Spark only once the run holds its lock, and a process backfill
    never does; threads of a backfill share the one session.
    """

    def __init__(self, app_name: str, *, conf: Mapping[str, str] | None = None) -> None:
        self.app_name = app_name
        self.conf = dict(conf or {})
        self._spark: SparkSession | None = None
        self._guard = threading.Lock()

    def __call__(self) -> SparkSession:
        from spark_flow.session import get_session

        with self._guard:
            if self._spark is None:
                self._spark = get_session(self.app_name, conf=self.conf)
            return self._spark

    def stop(self) -> None:
        with self._guard:
            if self._spark is not None:
                self._spark.stop()
                self._spark = None


def run_and_report(
    job: str,
    produce: Callable[[LazySession], Mapping[str, Any]],
    *,
    trigger: str | None = None,
    downstream: Sequence[str] = (),
    context: Mapping[str, object] | None = None,
    advice: Callable[[BaseException], str | None] | None = None,
) -> int:
    """Run a job once, print its one-line JSON report, trigger the next job, stop Spark.

    The report is `{"job", **context, "status", ...what produce returned, "seconds"}`, with
    `"triggered"` when a next job runs. A failure is rendered one way: the report's `error`
    and a `<job>: <error>` line on stderr hold our errors in full (they say what to do) and
    others by their most telling line, whose traceback is logged.

    Args:
        produce: runs the job on the session it is given (started when first called) and
            returns its report.
        trigger: the bundled job to run, in this process, once this one succeeded.
        downstream: that job's arguments.
        context: keys that identify the run, e.g. its logical date.
        advice: what to add to a failure's message, e.g. the command line's flag for it.

    Returns:
        The exit code: 1 when the run failed, else the triggered job's, else 0.
    """
    session = LazySession(job)
    started = time.perf_counter()
    report: dict[str, Any] = {"job": job, **(context or {})}
    try:
        try:
            report |= {"status": _SUCCESS, **produce(session)}
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then exit 1
            report |= _failure(job, exc, advice)
        report["seconds"] = round(time.perf_counter() - started, 3)
        succeeded = report["status"] == _SUCCESS
        if trigger and succeeded:
            report["triggered"] = trigger
        sys.stdout.write(json.dumps(report, default=str) + "\n")
        sys.stdout.flush()
        if not succeeded:
            return 1
        # Still inside the try: the next job joins this session rather than starting another.
        return run_job(trigger, downstream) if trigger else 0
    finally:
        session.stop()


def _failure(
    job: str, exc: Exception, advice: Callable[[BaseException], str | None] | None
) -> dict[str, Any]:
    error = one_line(exc)
    extra = advice(exc) if advice is not None else None
    if extra:
        told = exc.told(extra) if isinstance(exc, SparkFlowError) else f"{error} {extra}"
        error = " ".join(told.split())  # one line, as the report and stderr hold it
    if not isinstance(exc, SparkFlowError):  # Spark's and Python's: where it broke is news
        log.exception("%s failed", job)
    sys.stderr.write(f"{job}: {error}\n")
    return {"status": _FAILED, "error": error, **failure_details(exc)}


def job_main(
    name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[SparkSession, argparse.Namespace], Reportable],
    argv: Sequence[str] | None = None,
    *,
    before_spark: Callable[[argparse.Namespace], object] | None = None,
) -> int:
    """A bundled job's `main`: parse, run on a session, report, trigger the next job.

    `before_spark(args)` runs first, as part of the run (its failure is the run's, reported),
    before any session starts: a job that waits for its input holds no Spark application,
    and so no cluster resources, while it waits.

    Exit codes: 0 success, 1 the run failed (the report says why), 2 bad arguments (argparse).
    """
    own, downstream = split_at_double_dash(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    check_triggered(getattr(args, "trigger", None), downstream)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def produce(session: LazySession) -> Mapping[str, Any]:
        if before_spark is not None:
            before_spark(args)
        return run_for_report(name, run, session(), args)

    return run_and_report(
        name,
        produce,
        trigger=getattr(args, "trigger", None),
        downstream=downstream,
    )


def run_job(name: str, argv: Sequence[str]) -> int:
    """Run a bundled job in this process through its `main`, as triggers do."""
    exit_code: int = load(name).main(list(argv))
    return exit_code
