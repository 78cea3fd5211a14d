"""Bundled jobs: finding them by name, and the `main` every job shares.

Jobs live in `jobs/` (or `$SPARK_FLOW_JOBS_DIR`) as plain scripts, so `spark-submit jobs/x.py`
works; `spark-flow run x` and task-based triggers load them by name. spark_flow never imports
them statically: `jobs/` depends on spark_flow, not the reverse.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from spark_flow._common import failure_details
from spark_flow._paths import shipped_dirs
from spark_flow.errors import (
    InvalidArgumentError,
    JobProcessError,
    SparkFlowError,
    UnknownValueError,
)
from spark_flow.runners import RunContext, RunPolicy, expand

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "MERGED",
    "InSession",
    "InSubprocess",
    "JobReport",
    "Reportable",
    "add_trigger_argument",
    "available_jobs",
    "describe",
    "job_main",
    "load",
    "policy",
    "report_and_trigger",
    "report_of",
    "resolve",
    "run_job",
]

log = logging.getLogger(__name__)

JOBS_DIR_ENV = "SPARK_FLOW_JOBS_DIR"
# `field(metadata=MERGED)`: the field's keys go into the report itself, not under its name.
MERGED: Mapping[str, bool] = {"merged": True}


def jobs_dirs() -> list[Path]:
    """Where bundled jobs are looked up: $SPARK_FLOW_JOBS_DIR, the wheel's copy, the checkout."""
    return shipped_dirs(JOBS_DIR_ENV, "_jobs", "jobs")


def available_jobs() -> dict[str, Path]:
    """Job name -> script, first folder wins."""
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
    # their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


RunFn = Callable[[Any, argparse.Namespace], Reportable]


def run_job(name: str, argv: Sequence[str]) -> int:
    """Run a bundled job in this process, as `spark-flow run` and triggers do."""
    exit_code: int = load(name).main(list(argv))
    return exit_code


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


def job_main(
    name: str,
    parser: argparse.ArgumentParser,
    run: RunFn,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run on a session, print the one-line JSON report, trigger the next job.

    Exit codes: 0 success, 1 the run failed (the report says why), 2 bad arguments (argparse).
    """
    from spark_flow.session import get_session

    argv = list(sys.argv[1:] if argv is None else argv)
    own, downstream = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    args = parser.parse_args(own)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    started = time.perf_counter()
    spark = get_session(name)
    try:
        try:
            report: dict[str, Any] = {"job": name, "status": "success"}
            report |= report_of(name, run(spark, args))
        except Exception as exc:
            if isinstance(exc, SparkFlowError):  # our errors say all there is to say
                sys.stderr.write(f"{name}: {exc}\n")
            else:
                log.exception("%s failed", name)
            report = {"job": name, "status": "failed", "error": " ".join(str(exc).split())}
            report |= failure_details(exc)  # e.g. which branches of a failed split committed
        report["seconds"] = round(time.perf_counter() - started, 3)
        trigger = getattr(args, "trigger", None)
        if trigger and report["status"] == "success":
            report["triggered"] = trigger
        return report_and_trigger(report, trigger, downstream)
    finally:
        spark.stop()


def report_and_trigger(report: Mapping[str, Any], trigger: str | None, argv: list[str]) -> int:
    """Print the run's one-line JSON report; 1 if it failed, else run `trigger` with `argv`."""
    sys.stdout.write(json.dumps(report, default=str) + "\n")
    sys.stdout.flush()
    if report["status"] != "success":
        return 1
    return run_job(trigger, argv) if trigger else 0


def policy(name: str) -> RunPolicy:
    """The run policy job `name` declares as `POLICY` (default: independent runs)."""
    declared = getattr(load(name), "POLICY", RunPolicy())
    return declared if isinstance(declared, RunPolicy) else RunPolicy()


class InSession:
    """Runs of a bundled job inside one shared Spark session, one thread per run.

    Each run's Spark jobs carry its own tag (so fail-fast can cancel exactly them), its own FAIR
    pool (when the session schedules FAIR) and a description naming job and date.
    """

    def __init__(self, name: str, argv: Sequence[str], spark: SparkSession) -> None:
        self.name = name
        self.argv = list(argv)
        self.spark = spark
        self.module = load(name)

    def check(self, dates: Sequence[date]) -> None:
        """Parse every date's arguments before any run starts: a typo fails at once (exit 2)."""
        for day in dates:
            if getattr(self.module.parser().parse_args(expand(self.argv, day)), "trigger", None):
                raise InvalidArgumentError(
                    "--trigger",
                    "runs inside a shared session cannot trigger other jobs",
                    "Use --isolation process, or backfill the downstream job on its own.",
                )

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        from spark_flow.session import cancellable, job_description, scheduler_pool

        args = self.module.parser().parse_args(expand(self.argv, run.logical_date))
        label = f"{self.name}.{run.logical_date.isoformat()}"
        with (
            cancellable(self.spark, _tag(label)),
            scheduler_pool(self.spark, label),
            job_description(self.spark, f"{self.name} {run.logical_date} (run {run.run_id})"),
        ):
            return report_of(self.name, self.module.run(self.spark, args))

    def cancel(self, run: RunContext) -> None:
        from spark_flow.session import cancel

        cancel(self.spark, _tag(f"{self.name}.{run.logical_date.isoformat()}"))


class InSubprocess:
    """Runs of a bundled job, each in its own `spark-submit` (its own driver and session)."""

    def __init__(self, name: str, argv: Sequence[str], *, submit_args: Sequence[str] = ()) -> None:
        self.name = name
        self.argv = list(argv)
        self.script = resolve(name)
        self.submit_args = list(submit_args)
        self.spark_submit = _spark_submit()
        self._processes: dict[date, subprocess.Popen[str]] = {}
        self._guard = threading.Lock()

    def check(self, dates: Sequence[date]) -> None:
        """Parse every date's arguments before any process starts (exit 2 on a typo)."""
        parser = load(self.name).parser()
        for day in dates:
            own = expand(self.argv, day)
            parser.parse_args(own[: own.index("--")] if "--" in own else own)

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        command = [self.spark_submit, *self.submit_args, str(self.script)]
        command += expand(self.argv, run.logical_date)
        python = os.environ.get("PYSPARK_PYTHON", sys.executable)
        environment = {**os.environ, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}
        log.info("%s %s: %s", self.name, run.logical_date, " ".join(command))
        with self._guard:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=environment,
            )  # fmt: skip
            self._processes[run.logical_date] = process
        try:
            stdout, stderr = process.communicate()
        finally:
            with self._guard:
                self._processes.pop(run.logical_date, None)
        reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        report: dict[str, Any] = reports[-1] if reports else {}
        if process.returncode != 0:
            cause = report.get("error") or _last_line(stderr) or "no output"
            raise JobProcessError(self.name, process.returncode, str(cause))
        return {k: v for k, v in report.items() if k not in ("job", "status", "seconds")}

    def cancel(self, run: RunContext) -> None:
        with self._guard:
            process = self._processes.get(run.logical_date)
        if process is not None:
            process.terminate()


def _tag(label: str) -> str:
    return "spark-flow-run." + label


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _spark_submit() -> str:
    """`spark-submit` next to this interpreter (the venv's pyspark), else the one on PATH."""
    beside = Path(sys.executable).parent / "spark-submit"
    found = str(beside) if beside.exists() else shutil.which("spark-submit")
    if found is None:
        raise InvalidArgumentError(
            "isolation", "spark-submit is not installed here", "Install pyspark, or use threads."
        )
    return found
