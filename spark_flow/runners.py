"""Single Runner and Concurrent Runner: how many runs of a job may be active, and in what order.

Both run each logical date through the same protocol: take the run's lock, skip a date that
already succeeded (unless rerun), check depends_on_past, record the attempt in the run-state
store, run it, record how it ended, release the lock. They share one scheduling loop and differ
in the lock and the pool:

- `SingleRunner`: one lock for the whole job (or one `key`), one run at a time; a backfill runs
  the dates strictly in order and stops at the first failure. Slow, but the only correct way for
  jobs whose run for D reads what the run for D-1 wrote (the chapter's Backfilling consequence).
- `ConcurrentRunner`: up to `max_active_runs` dates at once, one lock per date; a failed run stops
  the others only with `fail_fast`. A job declared `RunPolicy(sequential=True)` refuses it: shared
  state read and written by concurrent runs gives wrong results, not just slow ones.

Locks are lease files in the store's `locks/` folder, safe across processes on one filesystem.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from spark_flow._common import check_name, failure_details, one_line, pid_alive
from spark_flow.errors import ConcurrentRunError, DependsOnPastError, InvalidArgumentError
from spark_flow.state import RunRecord, RunState, attempts_on, now

__all__ = [
    "BackfillReport",
    "ConcurrentRunner",
    "LockHolder",
    "Progress",
    "RunContext",
    "RunLock",
    "RunOutcome",
    "RunPolicy",
    "SingleRunner",
    "check_concurrency",
    "daily",
    "expand",
    "parse_date",
    "runner_for",
]

log = logging.getLogger(__name__)

OutcomeStatus = Literal["success", "failed", "skipped", "cancelled", "not_run"]
Task = Callable[["RunContext"], Mapping[str, Any]]
CancelHook = Callable[["RunContext"], None]


# -- logical dates and Airflow's macros ------------------------------------------------------


def parse_date(text: str, argument: str = "date") -> date:
    """An ISO date (YYYY-MM-DD), or InvalidArgumentError saying what was given."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            argument, f"{text!r} is not a date in YYYY-MM-DD form", "Write it like 2024-01-31."
        ) from None


def daily(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included."""
    if start > end:
        raise InvalidArgumentError(
            "dates", f"start {start} is after end {end}", "Give a start on or before the end."
        )
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def expand(argv: Iterable[str], logical_date: date) -> list[str]:
    """Substitute Airflow's `{ds}` (YYYY-MM-DD) and `{ds_nodash}` (YYYYMMDD) in job arguments.

    Other braces are left alone: job arguments may hold JSON or SQL.
    """
    ds = logical_date.isoformat()
    return [arg.replace("{ds_nodash}", ds.replace("-", "")).replace("{ds}", ds) for arg in argv]


# -- the lock ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, since when, and until when its lease runs without renewal."""

    run_id: str
    host: str
    pid: int
    since: datetime
    lease_until: datetime

    def error(self, job: str, key: str | None, waited: float | None = None) -> ConcurrentRunError:
        holder = {
            "run_id": self.run_id,
            "host": self.host,
            "pid": self.pid,
            "since": self.since.isoformat(timespec="seconds"),
            "lease_until": self.lease_until.isoformat(timespec="seconds"),
        }
        return ConcurrentRunError(job, key, holder, waited)


class RunLock:
    """A lease lock shared by processes on one filesystem: at most one holder per job (and key).

    Each acquisition creates the next numbered epoch file with an atomic hard link, so of two
    contenders exactly one gets it. The holder renews its lease by touching its file from a
    background thread and releases it in `release()`. A lock whose lease expired, or whose holder
    process on this host is gone, is taken over by the next contender, which logs it. A holder
    that finds a newer epoch has lost the lock (it stalled past its lease) and says so.
    """

    def __init__(
        self,
        folder: Path,
        *,
        job: str,
        key: str | None = None,
        run_id: str | None = None,
        lease_seconds: float = 60.0,
        renew: bool = True,
    ) -> None:
        if lease_seconds <= 0:
            raise InvalidArgumentError(
                "lease_seconds", f"must be positive, got {lease_seconds}", "Use e.g. 60."
            )
        self.folder = Path(folder)
        self.job = job
        self.key = key
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.lost = False
        self._renew = renew
        self._epoch: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._epoch is not None

    def acquire(self, *, wait: float | None = None, poll: float = 0.5) -> None:
        """Take the lock, waiting up to `wait` seconds for its holder (None: do not wait).

        Raises:
            ConcurrentRunError: another live run holds it (after `wait`, if given).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        while True:
            holder = self._try_acquire()
            if holder is None:
                return
            waited = time.monotonic() - started
            if wait is None or waited >= wait:
                raise holder.error(self.job, self.key, None if wait is None else waited)
            log.info("%s: waiting for run %s to release the lock", self.job, holder.run_id)
            time.sleep(min(poll, max(wait - waited, 0.01)))

    def release(self) -> None:
        """Give the lock up (no-op if not held); older epochs are removed."""
        if self._epoch is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        epoch, self._epoch = self._epoch, None
        self._path(epoch, ".released").touch()
        for old in self.folder.iterdir():
            if old.stem.isdigit() and int(old.stem) < epoch:
                old.unlink(missing_ok=True)

    def renew(self) -> bool:
        """Extend the lease; False (and logged) when another run has taken the lock over."""
        if self._epoch is None:
            return False
        top = self._top()
        if top != self._epoch:
            self.lost = True
            log.error(
                "%s: run %s lost its lock to a newer holder (epoch %s > %s): its lease expired "
                "while it ran, so another run may be running the same work",
                self.job, self.run_id, top, self._epoch,
            )  # fmt: skip
            return False
        os.utime(self._path(self._epoch))
        return True

    def holder(self) -> LockHolder | None:
        """The current holder, or None when the lock is free."""
        top = self._top()
        return None if top is None else self._live_holder(top)

    def _try_acquire(self) -> LockHolder | None:
        top = self._top()
        if top is not None:
            holder = self._live_holder(top)
            if holder is not None:
                return holder
        epoch = (top or 0) + 1
        if not self._create(epoch):
            return self.holder() or self._try_acquire()
        self._epoch = epoch
        self._stop.clear()
        if self._renew:
            self._renewer = threading.Thread(
                target=self._keep_renewing, name=f"lease-{self.job}", daemon=True
            )
            self._renewer.start()
        return None

    def _live_holder(self, epoch: int) -> LockHolder | None:
        """The holder of `epoch` if it still counts; logs a takeover when it does not."""
        path = self._path(epoch)
        if self._path(epoch, ".released").exists():
            return None
        try:
            info = json.loads(path.read_text())
            touched = path.stat().st_mtime
        except FileNotFoundError:
            return None
        holder = LockHolder(
            run_id=info["run_id"],
            host=info["host"],
            pid=info["pid"],
            since=datetime.fromisoformat(info["since"]),
            lease_until=datetime.fromtimestamp(touched + info["lease_seconds"], timezone.utc),
        )
        gone = holder.host == socket.gethostname() and not pid_alive(holder.pid)
        if not gone and holder.lease_until > now():
            return holder
        log.warning(
            "%s: taking the lock over from run %s (host %s, pid %s, since %s): %s",
            self.job, holder.run_id, holder.host, holder.pid, holder.since.isoformat(),
            "its process is gone" if gone else f"its lease expired at {holder.lease_until}",
        )  # fmt: skip
        return None

    def _create(self, epoch: int) -> bool:
        """Create epoch file `epoch` with its content in one step; False if it exists."""
        info = {
            "job": self.job,
            "key": self.key,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now().isoformat(),
            "lease_seconds": self.lease_seconds,
        }
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(info, out)
            os.link(temporary, self._path(epoch))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            if not self.renew():
                return

    def _top(self) -> int | None:
        epochs = [int(p.stem) for p in self.folder.glob("*.lock") if p.stem.isdigit()]
        return max(epochs, default=None)

    def _path(self, epoch: int, suffix: str = ".lock") -> Path:
        return self.folder / f"{epoch:012d}{suffix}"


# -- runs and their outcomes -------------------------------------------------------------------


@dataclass(frozen=True)
class RunPolicy:
    """What a job allows its runners: declared next to the job, checked by them.

    Attributes:
        sequential: runs must not overlap (each reads state the previous one wrote); refusing
            `max_active_runs > 1` keeps a backfill from producing wrong results.
        depends_on_past: the run for D starts only after the run for D-1 succeeded.
        reason: why, shown when a request is refused.
    """

    sequential: bool = False
    depends_on_past: bool = False
    reason: str = ""


@dataclass(frozen=True)
class RunContext:
    """What a task knows about the run it executes."""

    job: str
    logical_date: date
    run_id: str
    attempt: int
    key: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How one logical date of a job went: one row of a backfill's summary."""

    logical_date: date
    status: OutcomeStatus
    seconds: float = 0.0
    report: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    run_id: str | None = None
    attempt: int | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def rows(self) -> int | None:
        rows = self.report.get("rows_written", self.report.get("rows"))
        return rows if isinstance(rows, int) else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "logical_date": self.logical_date.isoformat(),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "run_id": self.run_id,
            "attempt": self.attempt,
            **({"error": self.error} if self.error else {}),
            **({"report": dict(self.report)} if self.report else {}),
        }


@dataclass(frozen=True)
class Progress:
    """A backfill's runs: finished, running, waiting for a slot."""

    job: str
    done: int
    running: int
    queued: int


@dataclass(frozen=True)
class BackfillReport:
    """Every date of a backfill, in date order."""

    job: str
    runs: tuple[RunOutcome, ...]
    max_active_runs: int

    @property
    def ok(self) -> bool:
        return all(run.status in ("success", "skipped") for run in self.runs)

    def count(self, status: OutcomeStatus) -> int:
        return sum(run.status == status for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        statuses = ("success", "skipped", "failed", "cancelled", "not_run")
        return {
            "job": self.job,
            "status": "success" if self.ok else "failed",
            "max_active_runs": self.max_active_runs,
            **{status: self.count(status) for status in statuses},  # type: ignore[arg-type]
            "runs": [run.as_dict() for run in self.runs],
        }

    def table(self) -> str:
        """The summary as aligned text: date, status, duration, rows, error."""
        lines = [f"{'date':<10}  {'status':<9}  {'seconds':>8}  {'rows':>8}  error"]
        for run in self.runs:
            rows = "" if run.rows is None else str(run.rows)
            lines.append(
                f"{run.logical_date.isoformat():<10}  {run.status:<9}  {run.seconds:>8.1f}  "
                f"{rows:>8}  {run.error or ''}".rstrip()
            )
        return "\n".join(lines)


# -- the runners -------------------------------------------------------------------------------


class _Runner:
    """The scheduling loop and the per-run protocol the two runners share."""

    max_active_runs: int
    stop_at_first_failure: bool

    def __init__(
        self,
        job: str,
        *,
        state: RunState,
        depends_on_past: bool = False,
        rerun: bool = False,
        wait: float | None = None,
        lease_seconds: float = 60.0,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        check_name("job", job)
        self.job = job
        self.state = state
        self.depends_on_past = depends_on_past
        self.rerun = rerun
        self.wait = wait
        self.lease_seconds = lease_seconds
        self.on_progress = on_progress
        self._active: dict[date, RunContext] = {}
        self._cancelled: set[date] = set()
        self._guard = threading.Lock()

    def _lock_key(self, logical_date: date) -> str | None:
        raise NotImplementedError

    def run(self, logical_date: date, task: Task, *, first: bool = False) -> Mapping[str, Any]:
        """Run `task` for one logical date under this runner's rules; its report when it succeeds.

        A date that already succeeded is not run again unless the runner reruns; its report
        then says `{"skipped": "..."}`.

        Raises:
            ConcurrentRunError: another run holds the lock.
            DependsOnPastError: depends_on_past, and the previous date did not succeed.
            Exception: whatever `task` raised (the attempt is recorded as failed first).
        """
        outcome = self._attempt(logical_date, task, first=first)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome.report if outcome.status == "success" else {"skipped": outcome.error}

    def backfill(
        self, dates: Sequence[date], task: Task, *, cancel: CancelHook | None = None
    ) -> BackfillReport:
        """Run `task` for every date, oldest first, at most `max_active_runs` at once.

        The first date is exempt from depends_on_past. `cancel` is called for the runs still
        active when a failure stops the backfill (fail-fast), e.g. to cancel their Spark jobs.
        """
        days = sorted(set(dates))
        if not days:
            raise InvalidArgumentError("dates", "no logical dates given", "Give at least one.")
        self._cancelled.clear()
        queued: deque[date] = deque(days)
        outcomes: dict[date, RunOutcome] = {}
        running: dict[Future[RunOutcome], date] = {}
        stopped_by: date | None = None
        with ThreadPoolExecutor(self.max_active_runs, thread_name_prefix=self.job) as pool:
            while queued or running:
                while stopped_by is None and queued and len(running) < self.max_active_runs:
                    day = queued[0]
                    if self.depends_on_past and day - timedelta(days=1) in running.values():
                        break  # it starts once its previous date has ended
                    queued.popleft()
                    first = day == days[0]
                    running[pool.submit(self._attempt, day, task, first=first)] = day
                self._report_progress(len(outcomes), len(running), len(queued))
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    outcome = future.result()
                    outcomes[running.pop(future)] = outcome
                    if outcome.status == "failed" and self.stop_at_first_failure:
                        stopped_by = stopped_by or outcome.logical_date
                        self._cancel_active(cancel)
            self._report_progress(len(outcomes), 0, len(queued))
        for day in queued:
            reason = f"not started: the run for {stopped_by} failed and the backfill stopped"
            outcomes[day] = RunOutcome(day, "not_run", error=reason)
        report = BackfillReport(self.job, tuple(outcomes[d] for d in days), self.max_active_runs)
        log.info("backfill of %s: %s", self.job, json.dumps(report.as_dict(), default=str))
        return report

    def _attempt(self, logical_date: date, task: Task, *, first: bool) -> RunOutcome:
        key = self._lock_key(logical_date)
        lock = RunLock(
            self.state.locks / self.job / (key or "_job"),
            job=self.job, key=key, lease_seconds=self.lease_seconds,
        )  # fmt: skip
        try:
            lock.acquire(wait=self.wait)
        except ConcurrentRunError as exc:
            return RunOutcome(logical_date, "failed", error=one_line(exc), exception=exc)
        try:
            return self._attempt_locked(logical_date, task, first=first, run_id=lock.run_id)
        finally:
            lock.release()

    def _attempt_locked(
        self, logical_date: date, task: Task, *, first: bool, run_id: str
    ) -> RunOutcome:
        history = self.state.history(self.job)  # read once, under the lock
        attempts = attempts_on(history, logical_date)
        latest = attempts[-1] if attempts else None
        if not self.rerun and latest is not None and latest.status == "success":
            reason = f"already succeeded (run {latest.run_id}, attempt {latest.attempt})"
            log.info("%s %s: %s", self.job, logical_date, reason)
            return RunOutcome(logical_date, "skipped", error=reason, report=latest.report)
        attempt = 1 + len(attempts)
        context = RunContext(self.job, logical_date, run_id, attempt, self._lock_key(logical_date))
        record = RunRecord(
            self.job, logical_date, run_id, attempt, "running", now(), key=context.key
        )
        refusal = None
        if self.depends_on_past and not first:
            refusal = self._past_refusal(logical_date, history)
        if refusal is not None:
            self.state.record(record.ended("skipped", error=str(refusal)))
            return RunOutcome(
                logical_date, "not_run", error=one_line(refusal), run_id=run_id,
                attempt=attempt, exception=refusal,
            )  # fmt: skip
        self.state.record(record)
        with self._guard:
            self._active[logical_date] = context
        log.info("%s %s: run %s, attempt %d started", self.job, logical_date, run_id, attempt)
        started = time.perf_counter()
        try:
            report = dict(task(context))
        except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised by run()
            cancelled = logical_date in self._cancelled
            error = one_line(exc)
            failed = record.ended(
                "failed",
                error=("cancelled: " if cancelled else "") + error,
                report=failure_details(exc),
            )
            self.state.record(failed)
            log.error("%s %s: run %s failed: %s", self.job, logical_date, run_id, error)
            return RunOutcome(
                logical_date, "cancelled" if cancelled else "failed",
                time.perf_counter() - started, failed.report, error, run_id, attempt, exc,
            )  # fmt: skip
        finally:
            with self._guard:
                self._active.pop(logical_date, None)
        self.state.record(record.ended("success", report=report))
        seconds = time.perf_counter() - started
        log.info("%s %s: run %s succeeded in %.1fs", self.job, logical_date, run_id, seconds)
        return RunOutcome(logical_date, "success", seconds, report, None, run_id, attempt)

    def _past_refusal(
        self, logical_date: date, history: list[RunRecord]
    ) -> DependsOnPastError | None:
        previous = logical_date - timedelta(days=1)
        before = attempts_on(history, previous)
        latest = before[-1] if before else None
        if latest is not None and latest.status == "success":
            return None
        found = "never ran" if latest is None else f"is {latest.status} (run {latest.run_id})"
        return DependsOnPastError(self.job, logical_date.isoformat(), previous.isoformat(), found)

    def _cancel_active(self, cancel: CancelHook | None) -> None:
        with self._guard:
            active = list(self._active.values())
            self._cancelled.update(context.logical_date for context in active)
        for context in active:
            log.warning("%s %s: cancelling (fail fast)", self.job, context.logical_date)
            if cancel is not None:
                cancel(context)

    def _report_progress(self, done: int, running: int, queued: int) -> None:
        progress = Progress(self.job, done, running, queued)
        log.info("%s: %d done, %d running, %d queued", self.job, done, running, queued)
        if self.on_progress is not None:
            self.on_progress(progress)


class SingleRunner(_Runner):
    """At most one active run of `job` (per `key`), across processes; backfills in date order.

    A backfill stops at its first failure: later dates would build on a missing or wrong past.

    Example:
        >>> runner = SingleRunner("visits_trends", state=RunState("data/state"),
        ...                       depends_on_past=True)
        >>> runner.run(date(2024, 1, 2), lambda run: compute_trends(run.logical_date))
    """

    max_active_runs = 1
    stop_at_first_failure = True

    def __init__(self, job: str, *, state: RunState, key: str | None = None, **options: Any):
        super().__init__(job, state=state, **options)
        self.key = key

    def _lock_key(self, logical_date: date) -> str | None:
        return self.key


class ConcurrentRunner(_Runner):
    """Up to `max_active_runs` logical dates of `job` at once; one lock per date.

    Raises:
        InvalidArgumentError: `policy.sequential` with `max_active_runs > 1`, or a bound < 1.
    """

    def __init__(
        self,
        job: str,
        *,
        state: RunState,
        max_active_runs: int,
        fail_fast: bool = False,
        policy: RunPolicy | None = None,
        **options: Any,
    ) -> None:
        if max_active_runs < 1:
            raise InvalidArgumentError(
                "max_active_runs", f"must be 1 or more, got {max_active_runs}", "Use e.g. 4."
            )
        if policy is not None:
            check_concurrency(job, policy, max_active_runs)
        super().__init__(job, state=state, **options)
        self.max_active_runs = max_active_runs
        self.stop_at_first_failure = fail_fast

    def _lock_key(self, logical_date: date) -> str | None:
        return logical_date.isoformat()


def check_concurrency(job: str, policy: RunPolicy, max_active_runs: int) -> None:
    """Refuse concurrent runs of a sequential job, saying why (InvalidArgumentError)."""
    if policy.sequential and max_active_runs > 1:
        raise InvalidArgumentError(
            "max_active_runs",
            f"{job} is sequential ({policy.reason or 'its runs share state'}), so "
            f"{max_active_runs} concurrent runs would give wrong results, not faster ones",
            "Backfill it with max_active_runs=1: slow, but correct.",
        )


def runner_for(
    job: str,
    *,
    state: RunState,
    policy: RunPolicy,
    max_active_runs: int = 1,
    depends_on_past: bool | None = None,
    fail_fast: bool = False,
    **options: Any,
) -> SingleRunner | ConcurrentRunner:
    """The runner a job's policy calls for: Single for sequential jobs, Concurrent otherwise.

    `depends_on_past=None` takes the policy's. A sequential job asked for more than one active
    run is refused (InvalidArgumentError) rather than silently serialized.
    """
    past = policy.depends_on_past if depends_on_past is None else depends_on_past
    if policy.sequential:
        check_concurrency(job, policy, max_active_runs)
        return SingleRunner(job, state=state, depends_on_past=past, **options)
    return ConcurrentRunner(
        job, state=state, max_active_runs=max_active_runs, fail_fast=fail_fast,
        depends_on_past=past, **options,
    )  # fmt: skip
