"""Single Runner and Concurrent Runner: how many runs of a job may be active, and in what order.

Both run each logical date through the same protocol: take the run's lock, skip a date that
already succeeded (unless rerun), check depends_on_past, record the attempt in the run-state
store, run it, record how it ended, release the lock. They share one scheduling loop and differ
in the lock and the pool. Every run holds its date's lock, so a date never runs twice at once,
whichever runner or process starts it:

- `SingleRunner`: the job's lock (or one `key`'s) too, one run at a time; a backfill runs
  the dates strictly in order and stops at the first failure. Slow, but the only correct way for
  jobs whose run for D reads what the run for D-1 wrote (the chapter's Backfilling consequence).
- `ConcurrentRunner`: up to `max_active_runs` dates at once, counting every process's (run slots,
  lease locks like the others, as Airflow's max_active_runs), one lock per date; a failed run stops
  the others only with `fail_fast`. A job declared `RunPolicy(sequential=True)` refuses it: shared
  state read and written by concurrent runs gives wrong results, not just slow ones.

The modules: `loop` (the runners, `RunPolicy`), `attempt` (one date's run, `RunContext`),
`lock` (the lease lock, across processes on one filesystem or drivers sharing a bucket),
`reports` (`RunOutcome`, `BackfillReport`), `dates` (logical dates and the `{ds}` macros),
`state` (the run history, `RunState` and `RunRecord`).
"""

from __future__ import annotations

from spark_flow.runners.attempt import RunContext
from spark_flow.runners.dates import daily, expand, parse_date
from spark_flow.runners.lock import LockHolder, RunLock
from spark_flow.runners.loop import (
    ConcurrentRunner,
    RunPolicy,
    SingleRunner,
    check_concurrency,
    runner_for,
)
from spark_flow.runners.reports import BackfillReport, OutcomeStatus, Progress, RunOutcome
from spark_flow.runners.state import RunRecord, RunState

__all__ = [
    "BackfillReport",
    "ConcurrentRunner",
    "LockHolder",
    "OutcomeStatus",
    "Progress",
    "RunContext",
    "RunLock",
    "RunOutcome",
    "RunPolicy",
    "RunRecord",
    "RunState",
    "SingleRunner",
    "check_concurrency",
    "daily",
    "expand",
    "parse_date",
    "runner_for",
]
