"""What the runners report: each date's `RunOutcome`, a backfill's `BackfillReport`, `Progress`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, get_args

from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.status import DONE

__all__ = ["OUTCOME_STATUSES", "BackfillReport", "OutcomeStatus", "Progress", "RunOutcome"]

OutcomeStatus = Literal["success", "already_done", "failed", "cancelled", "not_run"]
"""The words of `spark_flow.status` a run's outcome uses (a subset: never `running`, `skipped`)."""
OUTCOME_STATUSES: tuple[OutcomeStatus, ...] = get_args(OutcomeStatus)

# Which statuses must say why, and in which field: an error is what went wrong in a run that
# started; a reason is why a date was not run now.
_NEEDS = {"failed": "error", "cancelled": "error", "already_done": "reason", "not_run": "reason"}


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """How one logical date of a job went: one row of a backfill's summary.

    Attributes:
        logical_date: the date.
        status: `success` (ran now); `already_done` (succeeded before, not run again);
            `failed` (raised, or another run held its lock); `cancelled` (stopped by
            fail-fast while it ran); `not_run` (refused by depends_on_past, or not started
            because the backfill stopped at an earlier failure).
        seconds: how long the task ran; 0 when it did not run now.
        report: the task's report; for `already_done` the report of the run that succeeded;
            for `failed` and `cancelled` what the failure reported beyond its error.
        error: why a `failed` or `cancelled` run failed.
        reason: why an `already_done` or `not_run` date was not run now.
        run_id: the attempt made now, if one was (a refusal by depends_on_past has one).
        attempt: its number among the date's attempts.
        exception: what the run raised, or the refusal; not compared.
    """

    logical_date: date
    status: OutcomeStatus
    seconds: float = 0.0
    report: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    reason: str | None = None
    run_id: str | None = None
    attempt: int | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.status not in OUTCOME_STATUSES:
            raise UnknownValueError("status", self.status, OUTCOME_STATUSES)
        needed = _NEEDS.get(self.status)
        if needed is not None and not getattr(self, needed):
            raise InvalidArgumentError(
                needed,
                f"the {self.status} outcome of {self.logical_date} has none",
                f"Say why the date is {self.status} in `{needed}`.",
            )

    @property
    def rows(self) -> int | None:
        """Rows the run reported writing, when it says."""
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
            **({"reason": self.reason} if self.reason else {}),
            **({"report": dict(self.report)} if self.report else {}),
        }


@dataclass(frozen=True)
class Progress:
    """A backfill's runs: finished, running, waiting for a slot."""

    job: str
    done: int
    running: int
    queued: int


@dataclass(frozen=True, kw_only=True)
class BackfillReport:
    """Every date of a backfill, in date order."""

    job: str
    runs: tuple[RunOutcome, ...]
    max_active_runs: int

    @property
    def ok(self) -> bool:
        """Every date is done: it succeeded now or had succeeded before (`status.DONE`)."""
        return all(run.status in DONE for run in self.runs)

    def count(self, status: OutcomeStatus) -> int:
        """How many dates ended with `status`."""
        return sum(run.status == status for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: the overall status, a count per status, every run."""
        return {
            "job": self.job,
            "status": "success" if self.ok else "failed",
            "max_active_runs": self.max_active_runs,
            **{status: self.count(status) for status in OUTCOME_STATUSES},
            "runs": [run.as_dict() for run in self.runs],
        }

    def table(self) -> str:
        """The summary as aligned text: date, status, duration, rows, error or reason."""
        width = max(len(status) for status in OUTCOME_STATUSES)
        lines = [f"{'date':<10}  {'status':<{width}}  {'seconds':>8}  {'rows':>8}  why"]
        for run in self.runs:
            rows = "" if run.rows is None else str(run.rows)
            lines.append(
                f"{run.logical_date.isoformat():<10}  {run.status:<{width}}  {run.seconds:>8.1f}"
                f"  {rows:>8}  {run.error or run.reason or ''}".rstrip()
            )
        return "\n".join(lines)
