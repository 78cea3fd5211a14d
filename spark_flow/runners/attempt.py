"""One run of one logical date, as both runners make it.

A date runs under its date's lock, so no two runs of the same date ever overlap, whichever
runner or process starts them; a Single Runner takes its job's lock first, which keeps its runs
one at a time. Under the locks, the job's history is read once and everything is decided from
it: a date that already succeeded is not run again (`already_done`, unless the runner
reruns), and with depends_on_past a date whose previous date did not succeed is refused
(`not_run`). Otherwise the attempt is recorded `running`, the task runs, and the attempt is
recorded `success` or `failed`.
The run-state module says which of these leave rows in the history.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial
from typing import Any

from spark_flow._common import failure_details, one_line
from spark_flow.errors import (
    ConcurrentRunError,
    DependsOnPastError,
    InvalidArgumentError,
    LockLostError,
)
from spark_flow.runners.lock import RunLock, check_lease
from spark_flow.runners.reports import RunOutcome
from spark_flow.runners.state import RunRecord, RunState, latest_attempt, now

__all__ = ["Attempts", "CancelHook", "RunContext", "RunOptions", "Task"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """What a task knows about the run it executes (`key`: the Single Runner's key, if any)."""

    job: str
    logical_date: date
    run_id: str
    attempt: int
    key: str | None = None


# How often a run waiting for a run slot looks again (a slot frees when a run ends).
_SLOT_POLL_SECONDS = 0.5

Task = Callable[[RunContext], Mapping[str, Any] | None]
CancelHook = Callable[[RunContext], None]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How a runner treats each date; both runners' constructors take these as keywords.

    Attributes:
        depends_on_past: run a date only after its previous date succeeded.
        rerun: run dates that already succeeded too.
        wait: seconds to wait for a run holding the lock; None fails at once.
        lease_seconds: how long the lock holds without renewal (a holder renews it every third).
    """

    depends_on_past: bool = False
    rerun: bool = False
    wait: float | None = None
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.wait is not None and self.wait < 0:
            raise InvalidArgumentError(
                "wait", f"must be 0 or more seconds, got {self.wait}", "Use None not to wait."
            )
        check_lease(self.lease_seconds)


class Attempts:
    """Runs dates of one job under the protocol above, and cancels those running on request.

    Running a date and cancelling it share the active and cancelled state, so they stay
    together in this one, longer, class.

    Args:
        job: the job's name (its lock folder and its rows in the history).
        state: the run-state store.
        options: the runner's options.
        one_at_a_time: a Single Runner's runs: one at a time per job, or per `key`.
        key: the Single Runner's key, if it runs under one instead of the job's lock.
        slots: a Concurrent Runner's bound: a run first takes one of the job's `slots` run
            slots, shared by every process, and waits for one to free up.
    """

    def __init__(
        self,
        job: str,
        *,
        state: RunState,
        options: RunOptions,
        one_at_a_time: bool,
        key: str | None = None,
        slots: int = 0,
    ) -> None:
        self.job = job
        self.state = state
        self.options = options
        self._one_at_a_time = one_at_a_time
        self._key = key
        self._slots = slots
        self._active: dict[date, RunContext] = {}
        self._cancelled: set[date] = set()
        self._guard = threading.Lock()

    def __call__(
        self,
        logical_date: date,
        task: Task,
        *,
        first: bool,
        start: bool = False,
        stopping: threading.Event | None = None,
    ) -> RunOutcome:
        """Run `task` for `logical_date`; never raises.

        `first` exempts the date from depends_on_past; `start` (a backfill's first date) only
        when its previous date never ran: a previous date that failed still blocks it. Once
        `stopping` (its backfill's, set when the backfill stops) is set, a date still waiting
        for a run slot starts no more.
        """
        run_id = uuid.uuid4().hex[:12]
        held: list[RunLock] = []
        try:
            if self._slots:
                slot = _take_slot(
                    partial(self._lock, run_id=run_id), self._slots, stopping or threading.Event()
                )
                if slot is None:
                    reason = "not started: the backfill stopped while it waited for a run slot"
                    return RunOutcome(logical_date=logical_date, status="not_run", reason=reason)
                held.append(slot)
            for key in _lock_keys(logical_date, self._one_at_a_time, self._key):
                lock = self._lock(key, run_id=run_id)
                try:
                    lock.acquire(wait=self.options.wait)
                except ConcurrentRunError as exc:
                    return RunOutcome(
                        logical_date=logical_date, status="failed", error=one_line(exc),
                        exception=exc,
                    )  # fmt: skip
                held.append(lock)
            locks = held[1:] if self._slots else held
            return self._locked(
                logical_date, task, first=first, start=start, run_id=run_id, locks=locks
            )
        finally:
            for lock in reversed(held):
                lock.release()

    def _lock(self, key: str | None, *, run_id: str) -> RunLock:
        return RunLock(
            self.state.lock_folder(self.job, key), job=self.job, key=key, run_id=run_id,
            lease_seconds=self.options.lease_seconds,
        )  # fmt: skip

    def cancel_active(self, cancel: CancelHook | None) -> None:
        """Mark the running dates cancelled and call `cancel` for each (fail-fast)."""
        with self._guard:
            active = list(self._active.values())
            self._cancelled.update(context.logical_date for context in active)
        for context in active:
            log.warning("%s %s: cancelling (fail fast)", self.job, context.logical_date)
            if cancel is not None:
                cancel(context)

    def forget_cancelled(self) -> None:
        """Start afresh: dates cancelled by an earlier backfill may run again."""
        self._cancelled.clear()

    def _locked(
        self,
        logical_date: date,
        task: Task,
        *,
        first: bool,
        start: bool,
        run_id: str,
        locks: list[RunLock],
    ) -> RunOutcome:
        # Read once, under the lock. A keyed run's past is its key's runs only (and the keyless
        # runs' past theirs): another key's success is no reason to skip this one.
        key = self._key
        history = [run for run in self.state.history(self.job) if run.key == key]
        latest = latest_attempt(history, logical_date)
        if latest is not None and latest.status == "running":
            _close_abandoned(self.state, latest, run_id)
        if latest is not None and latest.status == "success" and not self.options.rerun:
            reason = f"already succeeded (run {latest.run_id}, attempt {latest.attempt})"
            log.info("%s %s: %s", self.job, logical_date, reason)
            return RunOutcome(
                logical_date=logical_date, status="already_done", reason=reason,
                report=latest.report,
            )  # fmt: skip
        context = RunContext(
            job=self.job, logical_date=logical_date, run_id=run_id, key=key,
            attempt=1 if latest is None else latest.attempt + 1,
        )  # fmt: skip
        record = RunRecord(
            job=self.job, logical_date=logical_date, run_id=run_id, attempt=context.attempt,
            status="running", started_at=now(), key=key,
        )  # fmt: skip
        refusal = None
        if self.options.depends_on_past and not first:
            refusal = _past_refusal(self.job, logical_date, history, start=start)
        if refusal is None:
            return self._run(context, record, task, locks)
        self.state.record(record.ended("not_run", error=str(refusal)))
        return RunOutcome(
            logical_date=logical_date, status="not_run", reason=one_line(refusal),
            run_id=run_id, attempt=context.attempt, exception=refusal,
        )  # fmt: skip

    def _run(
        self, context: RunContext, record: RunRecord, task: Task, locks: list[RunLock]
    ) -> RunOutcome:
        day = context.logical_date
        self.state.record(record)
        with self._guard:
            self._active[day] = context
        log.info(
            "%s %s: run %s, attempt %d started", self.job, day, context.run_id, context.attempt
        )
        started = time.perf_counter()
        try:
            report = _report(task(context))
        except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised by run()
            return self._failed(context, record, exc, time.perf_counter() - started)
        finally:
            with self._guard:
                self._active.pop(day, None)
        seconds = time.perf_counter() - started
        # A run whose lock another run took over meanwhile did not run alone: not a success,
        # whatever the task says (the run slots bound how many run, not what).
        lost = next((lock for lock in locks if not lock.confirm()), None)
        if lost is not None:
            return self._failed(
                context, record, LockLostError(self.job, lost.key, lost.run_id), seconds
            )
        self.state.record(record.ended("success", report=report))
        log.info("%s %s: run %s succeeded in %.1fs", self.job, day, context.run_id, seconds)
        return RunOutcome(
            logical_date=day, status="success", seconds=seconds, report=report,
            run_id=context.run_id, attempt=context.attempt,
        )  # fmt: skip

    def _failed(
        self, context: RunContext, record: RunRecord, exc: BaseException, seconds: float
    ) -> RunOutcome:
        cancelled = context.logical_date in self._cancelled
        error = one_line(exc)
        # The history has no `cancelled`: a cancelled run failed, and its error says why.
        failed = record.ended(
            "failed",
            error=("cancelled: " if cancelled else "") + error,
            report=failure_details(exc),
        )
        self.state.record(failed)
        log.error("%s %s: run %s failed: %s", self.job, context.logical_date, context.run_id, error)
        return RunOutcome(
            logical_date=context.logical_date, status="cancelled" if cancelled else "failed",
            seconds=seconds, report=failed.report, error=error, run_id=context.run_id,
            attempt=context.attempt, exception=exc,
        )  # fmt: skip


def _report(returned: object) -> dict[str, Any]:
    """The run's report from what its task returned: a task that only writes (an Airflow
    task's body, as the book's loaders are) returns None, which is an empty report, not a
    failure of a run whose work is done; any other value is kept as `result`."""
    if returned is None:
        return {}
    if isinstance(returned, Mapping):
        return dict(returned)
    return {"result": returned}


def _close_abandoned(state: RunState, attempt: RunRecord, run_id: str) -> None:
    """Record as failed an attempt still `running` that cannot be: this run holds its locks, so
    its process died (or stalled past its lease) without recording how it ended. Left
    `running`, it would stay so forever in the history; a stalled run that ends after all
    records its own end later, which supersedes this one."""
    error = (
        f"abandoned: run {attempt.run_id} (host {attempt.host}, pid {attempt.pid}) ended "
        f"without recording how; found by run {run_id}, which holds its lock now"
    )
    log.warning("%s %s: %s", attempt.job, attempt.logical_date, error)
    state.record(replace(attempt.ended("failed", error=error), ended_at=None))


def _take_slot(
    lock: Callable[[str], RunLock], slots: int, stopping: threading.Event
) -> RunLock | None:
    """One of the job's run slots (`max_active_runs` of them, lease locks like the others), so
    the bound holds across processes and hosts as Airflow's max_active_runs does, not only in
    one backfill. Waits for a slot while all are taken; None once the backfill is stopping."""
    waiting = False
    candidates = [lock(f"_slot{n}") for n in range(slots)]  # each with its store client, once
    while not stopping.is_set():
        holders = []
        for slot in candidates:
            try:
                slot.acquire()
            except ConcurrentRunError as exc:
                holders.append(f"run {exc.holder['run_id']} on {exc.holder['host']}")
                continue
            return slot
        if not waiting:  # said once: a backfill of another process may hold them for hours
            log.warning(
                "%s: its %d run slots are all taken by other runs (%s); waiting for one",
                slot.job, slots, ", ".join(holders),
            )  # fmt: skip
            waiting = True
        stopping.wait(_SLOT_POLL_SECONDS)
    return None


def _lock_keys(logical_date: date, one_at_a_time: bool, key: str | None) -> list[str | None]:
    """The locks a date runs under, in the order taken: a Single Runner's own lock first, then
    the date's, so no two runs ever wait for each other's locks in a cycle (a Concurrent Runner
    takes only dates' locks). A keyed run has its own line of runs, which its key's lock alone
    keeps one at a time."""
    day = logical_date.isoformat()
    if not one_at_a_time:
        return [day]
    return [None, day] if key is None else [key]


def _past_refusal(
    job: str, logical_date: date, history: list[RunRecord], *, start: bool
) -> DependsOnPastError | None:
    """The refusal depends_on_past makes when the previous date's last attempt did not succeed.

    A `start` date whose previous date never ran has no past to depend on (Airflow's first run);
    one whose previous date failed does: starting a range after it would build on that failure.
    """
    previous = logical_date - timedelta(days=1)
    latest = latest_attempt(history, previous)
    if (latest is None and start) or (latest is not None and latest.status == "success"):
        return None
    found = "never ran" if latest is None else f"is {latest.status} (run {latest.run_id})"
    return DependsOnPastError(job, logical_date.isoformat(), previous.isoformat(), found)
