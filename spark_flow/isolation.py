"""How the runs of a backfill are kept apart, named after `spark-flow backfill --isolation`.

An `Isolation` is a runner's task for a bundled job (`__call__(run) -> report`) with the checks
before the first run and the cancel hook fail-fast uses:

- `ThreadIsolation` (`thread`): every run in a thread of one shared Spark session; cheap to
  start, and the runs share the executors (FAIR pools when the session schedules FAIR).
- `ProcessIsolation` (`process`): every run in its own `spark-submit`, with its own driver;
  a run that crashes or leaks cannot take the others with it, and it may trigger other jobs.

`isolation(mode, ...)` picks one by the flag's value.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from spark_flow.errors import InvalidArgumentError, JobProcessError, UnknownValueError
from spark_flow.jobs import job_arguments, load, resolve, run_for_report
from spark_flow.runners import RunContext, expand
from spark_flow.submit import package_to_ship, submit_command, submit_environment

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "ISOLATION_MODES",
    "Isolation",
    "IsolationMode",
    "ProcessIsolation",
    "ThreadIsolation",
    "isolation",
]

log = logging.getLogger(__name__)

IsolationMode = Literal["thread", "process"]
ISOLATION_MODES: tuple[IsolationMode, ...] = get_args(IsolationMode)


class Isolation(Protocol):
    """How a backfill runs each date of a job; a runner's task, and its cancel hook."""

    def check(self, dates: Sequence[date]) -> None:
        """Parse every date's arguments before any run starts: a typo fails at once."""

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        """Run the job for `run.logical_date`; its report."""

    def cancel(self, run: RunContext) -> None:
        """Stop the run of `run.logical_date` if it is still going (fail-fast)."""


class ThreadIsolation:
    """`--isolation thread`: each run in a thread of one shared Spark session.

    Each run's Spark jobs carry its own tag (so fail-fast can cancel exactly them), its own FAIR
    pool (when the session schedules FAIR) and a description naming job and date.

    Args:
        spark: the session, or a function that starts it on first use (e.g. a `LazySession`).
    """

    def __init__(
        self, job: str, argv: Sequence[str], spark: SparkSession | Callable[[], SparkSession]
    ) -> None:
        self.job = job
        self.argv = list(argv)
        self.module = load(job)
        self._spark = spark

    def check(self, dates: Sequence[date]) -> None:
        """Parse every date's arguments first (argparse exits 2); refuse `--trigger`."""
        for day in dates:
            if getattr(job_arguments(self.module, self.argv, day), "trigger", None):
                raise InvalidArgumentError(
                    "--trigger",
                    "runs inside a shared session cannot trigger other jobs",
                    "Run each date in its own process (process isolation), or backfill the "
                    "downstream job on its own.",
                )

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        from spark_flow.session import cancellable, job_description, scheduler_pool

        args = job_arguments(self.module, self.argv, run.logical_date)
        spark = self._session()
        label = f"{self.job}.{run.logical_date.isoformat()}"
        with (
            cancellable(spark, _tag(label)),
            scheduler_pool(spark, label),
            job_description(spark, f"{self.job} {run.logical_date} (run {run.run_id})"),
        ):
            return run_for_report(self.job, self.module.run, spark, args)

    def cancel(self, run: RunContext) -> None:
        from spark_flow.session import cancel

        cancel(self._session(), _tag(f"{self.job}.{run.logical_date.isoformat()}"))

    def _session(self) -> SparkSession:
        return self._spark() if callable(self._spark) else self._spark


class ProcessIsolation:
    """`--isolation process`: each run in its own `spark-submit` (its own driver and session).

    Bound for a cluster, every run takes spark_flow's zip on `--py-files`, as `spark-flow
    submit` does; the zip is written once, and removed with this object.
    """

    def __init__(self, job: str, argv: Sequence[str], *, submit_args: Sequence[str] = ()) -> None:
        self.job = job
        self.argv = list(argv)
        self.script = resolve(job)
        self.submit_args = list(submit_args)
        self.environment = submit_environment()  # no Spark to submit with: refused here
        self._shipped = tempfile.TemporaryDirectory(prefix="spark-flow-backfill-")
        self.ship = package_to_ship(self.submit_args, Path(self._shipped.name))
        self._processes: dict[date, subprocess.Popen[str]] = {}
        self._guard = threading.Lock()

    def check(self, dates: Sequence[date]) -> None:
        """Parse every date's arguments before any process starts (argparse exits 2)."""
        module = load(self.job)
        for day in dates:
            job_arguments(module, self.argv, day)

    def command(self, logical_date: date) -> list[str]:
        """The spark-submit command line of the run for `logical_date`."""
        arguments = expand(self.argv, logical_date)
        return submit_command(self.script, self.submit_args, arguments, ship=self.ship)

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        command = self.command(run.logical_date)
        log.info("%s %s: %s", self.job, run.logical_date, " ".join(command))
        with self._guard:
            # A process group of its own: spark-submit's JVM starts the Python driver as its own
            # child, which a signal to the JVM alone would leave running, orphaned, writing
            # after its run was reported cancelled and its lock released.
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=self.environment, start_new_session=True,
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
            raise JobProcessError(self.job, process.returncode, str(cause))
        return {k: v for k, v in report.items() if k not in ("job", "status", "seconds")}

    def cancel(self, run: RunContext) -> None:
        """Stop the run's spark-submit and the driver it started (its whole process group)."""
        with self._guard:
            process = self._processes.get(run.logical_date)
            if process is None:
                return
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:  # the whole group has ended meanwhile
                log.debug("%s %s: its processes had ended", self.job, run.logical_date)


def isolation(
    mode: IsolationMode, job: str, argv: Sequence[str], *, session: Callable[[], SparkSession]
) -> Isolation:
    """The isolation `spark-flow backfill --isolation MODE` names, for job `job`'s runs.

    Args:
        mode: one of `ISOLATION_MODES`.
        argv: the job's arguments, `{ds}` macros included.
        session: starts the shared session on first use (thread isolation only).

    Raises:
        UnknownValueError: `mode` is not one of `ISOLATION_MODES`.
    """
    make = _ISOLATIONS.get(mode)
    if make is None:
        raise UnknownValueError("isolation", mode, ISOLATION_MODES)
    return make(job, argv, session)


_ISOLATIONS: dict[
    IsolationMode, Callable[[str, Sequence[str], Callable[[], SparkSession]], Isolation]
] = {
    "thread": ThreadIsolation,
    "process": lambda job, argv, _session: ProcessIsolation(job, argv),
}


def _tag(label: str) -> str:
    return "spark-flow-run." + label


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
