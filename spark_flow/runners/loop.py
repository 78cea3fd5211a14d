"""The one scheduling loop of the Single and Concurrent Runner, and a job's `RunPolicy`.

The two runners share the loop and the per-date protocol (`attempt.py`); they differ only in the
lock a date runs under and in the size of the pool that runs dates at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import TypeVar

from spark_flow._common import check_name
from spark_flow.errors import InvalidArgumentError
from spark_flow.runners.attempt import Attempts, CancelHook, RunOptions, Task
from spark_flow.runners.reports import BackfillReport, Progress, RunOutcome
from spark_flow.runners.state import RunState

__all__ = [
    "ConcurrentRunner",
    "ProgressHook",
    "RunPolicy",
    "SingleRunner",
    "check_concurrency",
    "runner_for",
]

log = logging.getLogger(__name__)

# How often a backfill's waiting thread wakes to let Python run a Ctrl-C's handler.
_INTERRUPT_CHECK_SECONDS = 0.2
_Result = TypeVar("_Result")

ProgressHook = Callable[[Progress], None]


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


class _Runner:
    """The scheduling loop: dates oldest first, at most `max_active_runs` at once."""

    def __init__(
        self,
        job: str,
        *,
        state: RunState,
        options: RunOptions,
        one_at_a_time: bool,
        key: str | None,
        max_active_runs: int,
        stop_at_first_failure: bool,
        on_progress: ProgressHook | None,
    ) -> None:
        check_name("job", job)
        self.job = job
        self.state = state
        self.options = options
        self.max_active_runs = max_active_runs
        self.stop_at_first_failure = stop_at_first_failure
        self.on_progress = on_progress
        self._attempts = Attempts(
            job, state=state, options=options, one_at_a_time=one_at_a_time, key=key,
            slots=0 if one_at_a_time else max_active_runs,
        )  # fmt: skip

    def run(self, logical_date: date, task: Task, *, first: bool = False) -> RunOutcome:
        """Run `task` for one logical date under this runner's rules.

        Args:
            logical_date: the date to run.
            task: called with the run's `RunContext`; returns the run's report (a
                mapping; None, as a task that only writes returns, is an empty report).
            first: exempt this date from depends_on_past (the first date of the job).

        Returns:
            A `success` outcome with the task's report, or `already_done` (the date succeeded
            before and the runner does not rerun) with that run's report and the reason.

        Raises:
            ConcurrentRunError: another run holds the lock (after `wait`, when given).
            DependsOnPastError: depends_on_past, and the previous date did not succeed.
            Exception: whatever `task` raised (the attempt is recorded as failed first).
        """
        outcome = self._attempts(logical_date, task, first=first)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome

    def backfill(
        self,
        dates: Sequence[date],
        task: Task,
        *,
        cancel: CancelHook | None = None,
        first: bool = False,
    ) -> BackfillReport:
        """Run `task` for every date, oldest first, at most `max_active_runs` at once.

        With depends_on_past, the first date needs no past when its previous date never ran;
        when that date failed (or was refused), the first date is refused too, unless `first`.
        `cancel` is called for the runs still active when a failure stops the backfill
        (fail-fast), or an interrupt (Ctrl-C) does, e.g. to cancel their Spark jobs.

        Raises:
            InvalidArgumentError: no dates.
            KeyboardInterrupt: the backfill was interrupted; its running runs were cancelled
                and have ended (recorded failed, "cancelled: ...").
        """
        days = sorted(set(dates))
        if not days:
            raise InvalidArgumentError("dates", "no logical dates given", "Give at least one.")
        self._attempts.forget_cancelled()
        queued: deque[date] = deque(days)
        stopping = threading.Event()  # never cleared: stops a thread started as Ctrl-C came
        with ThreadPoolExecutor(self.max_active_runs, thread_name_prefix=self.job) as pool:
            try:
                outcomes, stopped_by = _interruptible(
                    partial(self._schedule, pool, queued, task, cancel, first=first,
                            stopping=stopping),
                    name=f"{self.job}-backfill",
                    on_interrupt=partial(_stop, self.job, stopping, self._attempts, cancel),
                )  # fmt: skip
            finally:
                pool.shutdown()  # every run has ended: a later run() starts afresh
                self._attempts.forget_cancelled()
        for day in queued:
            reason = f"not started: the run for {stopped_by} failed and the backfill stopped"
            outcomes[day] = RunOutcome(logical_date=day, status="not_run", reason=reason)
        report = BackfillReport(
            job=self.job,
            runs=tuple(outcomes[day] for day in days),
            max_active_runs=self.max_active_runs,
        )
        log.info("backfill of %s: %s", self.job, json.dumps(report.as_dict(), default=str))
        return report

    def _schedule(
        self,
        pool: ThreadPoolExecutor,
        queued: deque[date],
        task: Task,
        cancel: CancelHook | None,
        *,
        first: bool,
        stopping: threading.Event,
    ) -> tuple[dict[date, RunOutcome], date | None]:
        """Run the `queued` dates on `pool`; their outcomes, and the failed date that stopped
        the rest (left in `queued`), if one did."""
        start = queued[0]
        outcomes: dict[date, RunOutcome] = {}
        running: dict[Future[RunOutcome], date] = {}
        stopped_by: date | None = None
        while queued or running:
            # After an interrupt (`stopping`), the runs still running end and no more start.
            while (stopped_by is None and not stopping.is_set() and queued
                   and len(running) < self.max_active_runs):  # fmt: skip
                day = queued[0]
                if self.options.depends_on_past and day - timedelta(days=1) in running.values():
                    break  # it starts once its previous date has ended
                queued.popleft()
                is_start = day == start
                attempt = pool.submit(
                    self._attempts, day, task, first=first and is_start, start=is_start,
                    stopping=stopping,
                )  # fmt: skip
                running[attempt] = day
            self._report_progress(len(outcomes), len(running), len(queued))
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                outcome = future.result()
                outcomes[running.pop(future)] = outcome
                if outcome.status == "failed" and self.stop_at_first_failure:
                    stopped_by = stopped_by or outcome.logical_date
                    stopping.set()  # dates waiting for a run slot start no more
                    self._attempts.cancel_active(cancel)
        self._report_progress(len(outcomes), 0, len(queued))
        return outcomes, stopped_by

    def _report_progress(self, done: int, running: int, queued: int) -> None:
        log.info("%s: %d done, %d running, %d queued", self.job, done, running, queued)
        if self.on_progress is not None:
            self.on_progress(Progress(self.job, done, running, queued))


class SingleRunner(_Runner):
    """At most one active run of `job` (per `key`), across processes; backfills in date order.

    A backfill stops at its first failure: later dates would build on a missing or wrong past.

    Args:
        job: the job's name.
        state: the run-state store (its history and its locks).
        key: a line of runs of its own (e.g. a tenant): this key's lock instead of the job's,
            and only this key's runs as its past (already done, depends_on_past, attempts).
        depends_on_past: run a date only after its previous date succeeded.
        rerun: run dates that already succeeded too.
        wait: seconds to wait for a run holding the lock; None fails at once.
        lease_seconds: how long the lock holds without renewal.
        on_progress: called as a backfill's runs start and end.

    Example:
        >>> runner = SingleRunner("visits_trends", state=RunState("data/state"),
        ...                       depends_on_past=True)
        >>> runner.run(date(2024, 1, 2), lambda run: compute_trends(run.logical_date))
    """

    def __init__(
        self,
        job: str,
        *,
        state: RunState,
        key: str | None = None,
        depends_on_past: bool = False,
        rerun: bool = False,
        wait: float | None = None,
        lease_seconds: float = 60.0,
        on_progress: ProgressHook | None = None,
    ) -> None:
        options = RunOptions(
            depends_on_past=depends_on_past, rerun=rerun, wait=wait, lease_seconds=lease_seconds
        )
        super().__init__(
            job, state=state, options=options, one_at_a_time=True, key=key, max_active_runs=1,
            stop_at_first_failure=True, on_progress=on_progress,
        )  # fmt: skip
        self.key = key


class ConcurrentRunner(_Runner):
    """Up to `max_active_runs` logical dates of `job` at once; one lock per date.

    Args:
        job: the job's name.
        state: the run-state store (its history and its locks).
        max_active_runs: how many dates of the job may run at once, counting every process's
            runs (each takes one of this many run slots first, waiting for a free one).
        fail_fast: on a failure, cancel the running dates and start no more; by default the
            other dates run.
        policy: the job's policy, to refuse concurrency it forbids.
        depends_on_past: run a date only after its previous date succeeded.
        rerun: run dates that already succeeded too.
        wait: seconds to wait for a run holding a date's lock; None fails at once.
        lease_seconds: how long a lock holds without renewal.
        on_progress: called as a backfill's runs start and end.

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
        depends_on_past: bool = False,
        rerun: bool = False,
        wait: float | None = None,
        lease_seconds: float = 60.0,
        on_progress: ProgressHook | None = None,
    ) -> None:
        if max_active_runs < 1:
            raise InvalidArgumentError(
                "max_active_runs", f"must be 1 or more, got {max_active_runs}", "Use e.g. 4."
            )
        if policy is not None:
            check_concurrency(job, policy, max_active_runs)
        options = RunOptions(
            depends_on_past=depends_on_past, rerun=rerun, wait=wait, lease_seconds=lease_seconds
        )
        super().__init__(
            job, state=state, options=options, one_at_a_time=False, key=None,
            max_active_runs=max_active_runs, stop_at_first_failure=fail_fast,
            on_progress=on_progress,
        )  # fmt: skip


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
    rerun: bool = False,
    wait: float | None = None,
    lease_seconds: float = 60.0,
    on_progress: ProgressHook | None = None,
) -> SingleRunner | ConcurrentRunner:
    """The runner a job's policy calls for: Single for sequential jobs, Concurrent otherwise.

    `depends_on_past=None` takes the policy's. A sequential job's backfill always stops at its
    first failure, whatever `fail_fast`. The other options are the runners'.

    Raises:
        InvalidArgumentError: a sequential job asked for more than one active run (refused
            rather than silently serialized), or a bound < 1.
    """
    past = policy.depends_on_past if depends_on_past is None else depends_on_past
    if policy.sequential:
        check_concurrency(job, policy, max_active_runs)
        return SingleRunner(
            job, state=state, depends_on_past=past, rerun=rerun, wait=wait,
            lease_seconds=lease_seconds, on_progress=on_progress,
        )  # fmt: skip
    return ConcurrentRunner(
        job, state=state, max_active_runs=max_active_runs, fail_fast=fail_fast,
        depends_on_past=past, rerun=rerun, wait=wait, lease_seconds=lease_seconds,
        on_progress=on_progress,
    )  # fmt: skip


def _stop(
    job: str,
    stopping: threading.Event,
    attempts: Attempts,
    cancel: CancelHook | None,
    interrupt: BaseException,
) -> None:
    """Start no more runs of a backfill and cancel the running ones as fail-fast does (each is
    recorded failed, "cancelled: ..."); they end before the `interrupt` is raised on."""
    stopping.set()
    log.warning("%s: backfill stopped (%r), cancelling its running runs", job, interrupt)
    attempts.cancel_active(cancel)


def _interruptible(
    work: Callable[[], _Result], *, name: str, on_interrupt: Callable[[BaseException], None]
) -> _Result:
    """`work()`, run in a thread of its own so that an interrupt (Ctrl-C), which only this
    thread handles, finds this one waiting, holding none of the locks `work`'s threads need (a
    future's, a log handler's): caught amid `work`, it could leave one held, and they would
    wait for it forever. On an interrupt, `on_interrupt` is called, `work` is waited for and
    the interrupt raised on. The wait is in short joins: the kernel may hand the signal to
    another thread, which wakes no blocked lock of this one, and Python runs the handler
    only as this thread wakes.
    """
    done: list[_Result] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name=name)
    try:
        worker.start()  # the interrupt may come as it returns, with `work` under way
        while worker.is_alive():
            worker.join(_INTERRUPT_CHECK_SECONDS)
    except BaseException as exc:
        on_interrupt(exc)
        while worker.is_alive():  # not alive: the interrupt came before the thread began
            worker.join(_INTERRUPT_CHECK_SECONDS)
        raise
    if failed:
        raise failed[0]
    return done[0]
