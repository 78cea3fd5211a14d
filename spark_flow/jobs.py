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
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from spark_flow._paths import shipped_dirs
from spark_flow.errors import SparkFlowError, UnknownValueError

__all__ = [
    "add_trigger_argument",
    "available_jobs",
    "describe",
    "job_main",
    "load",
    "resolve",
    "run_job",
]

log = logging.getLogger(__name__)

JOBS_DIR_ENV = "SPARK_FLOW_JOBS_DIR"
RunFn = Callable[[Any, argparse.Namespace], Mapping[str, Any]]


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
    spec = importlib.util.spec_from_file_location(f"spark_flow_job_{name}", script)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise UnknownValueError("job", name, sorted(available_jobs()))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
            report: dict[str, Any] = {"job": name, "status": "success", **run(spark, args)}
        except Exception as exc:
            if isinstance(exc, SparkFlowError):  # our errors say all there is to say
                sys.stderr.write(f"{name}: {exc}\n")
            else:
                log.exception("%s failed", name)
            report = {"job": name, "status": "failed", "error": " ".join(str(exc).split())}
            # e.g. a failed split's per-branch outcomes: which branches committed all the same
            details = getattr(getattr(exc, "report", None), "as_dict", None)
            if callable(details):
                report["details"] = details()
        report["seconds"] = round(time.perf_counter() - started, 3)
        trigger = getattr(args, "trigger", None)
        if trigger and report["status"] == "success":
            report["triggered"] = trigger
        sys.stdout.write(json.dumps(report, default=str) + "\n")
        sys.stdout.flush()
        if report["status"] != "success":
            return 1
        return run_job(trigger, downstream) if trigger else 0
    finally:
        spark.stop()
