"""The run-state store: one Delta table of run attempts, kept by the runners.

What the table holds for a logical date of a job:

- an attempt that runs: two rows, `running` when it starts and `success` or `failed` when it ends
  (a run cancelled by fail-fast ends `failed`, its error starting with "cancelled: ");
- an attempt refused by depends_on_past: one row, `not_run`;
- a date that already succeeded (and is not rerun), or whose lock another run holds: no row.

A Single Runner with a `key` runs its own line of runs: its rows carry the key, and only they
decide its already-done dates, its depends_on_past and its attempt numbers.

Rows are appends, so concurrent runners never conflict and never lose each other's rows; readers
see one record per attempt, its latest row. An attempt still `running` after its process died
stays so until the date's next attempt, which records it `failed` (its error starting with
"abandoned: "): the lock's lease, not this table, decides who may run.

The store lives in a folder (the profile's `[state] location`, or `$SPARK_FLOW_STATE`): the table
under `runs/`, the runners' locks under `locks/`. The folder is a local or mounted path, or an
object store URI (`s3://bucket/state`) that drivers on different hosts share.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa

from spark_flow import storage
from spark_flow.delta.records import append_records, read_records
from spark_flow.errors import UnknownValueError

__all__ = ["RUN_STATUSES", "STATE_ENV", "RunRecord", "RunState", "RunStatus", "latest_attempt"]

STATE_ENV = "SPARK_FLOW_STATE"
RunStatus = Literal["running", "success", "failed", "not_run"]
"""The words of `spark_flow.status` a run record uses; see the module docstring for when."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

_UTC = pa.timestamp("us", tz="UTC")
_SCHEMA = pa.schema(
    [
        ("job", pa.string()),
        ("key", pa.string()),
        ("logical_date", pa.date32()),
        ("run_id", pa.string()),
        ("attempt", pa.int32()),
        ("status", pa.string()),
        ("started_at", _UTC),
        ("ended_at", _UTC),
        ("error", pa.string()),
        ("report", pa.string()),
        ("host", pa.string()),
        ("pid", pa.int64()),
        ("recorded_at", _UTC),
    ]
)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RunRecord:
    """One attempt of a job for a logical date, as far as it got (`status`: see the module)."""

    job: str
    logical_date: date | None
    run_id: str
    attempt: int
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None
    report: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise UnknownValueError("status", self.status, RUN_STATUSES)

    def ended(
        self, status: RunStatus, *, error: str | None = None, report: Any = None
    ) -> RunRecord:
        """This attempt, finished with `status`."""
        return replace(self, status=status, ended_at=now(), error=error, report=report or {})

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    @property
    def rows(self) -> int | None:
        """Rows the job reported writing, when it says."""
        rows = self.report.get("rows_written", self.report.get("rows"))
        return rows if isinstance(rows, int) else None


class RunState:
    """Run history of every job, in a Delta table under `location` (a path or a store URI)."""

    def __init__(self, location: str | Path) -> None:
        self.location = storage.absolute(str(location))
        self.table = storage.join(self.location, "runs")
        self.locks = storage.join(self.location, "locks")

    def lock_folder(self, job: str, key: str | None = None) -> str:
        """The folder of the lock `job` runs under for `key` (None: the job's one lock)."""
        return storage.join(self.locks, job, key or "_job")

    @classmethod
    def from_profile(cls, profile: str | None = None) -> RunState:
        """The store named by `$SPARK_FLOW_STATE`, else by the profile's `[state] location`."""
        if os.environ.get(STATE_ENV):
            return cls(os.environ[STATE_ENV])
        from spark_flow.session import load_profile, profile_name

        return cls(load_profile(profile_name(profile)).state_location)

    def __repr__(self) -> str:
        return f"RunState({self.location!r})"

    def record(self, record: RunRecord) -> None:
        """Append one event of an attempt (its start, or its end)."""
        row = {
            "job": record.job,
            "key": record.key,
            "logical_date": record.logical_date,
            "run_id": record.run_id,
            "attempt": record.attempt,
            "status": record.status,
            "started_at": record.started_at,
            "ended_at": record.ended_at,
            "error": record.error,
            "report": json.dumps(dict(record.report), default=str),
            "host": record.host,
            "pid": record.pid,
            "recorded_at": now(),
        }
        append_records(self.table, [row], _SCHEMA)

    def history(self, job: str, *, key: str | None = None) -> list[RunRecord]:
        """Every attempt of `job` (of one `key`, if given), latest state each, newest first."""
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        rows = [row for row in read_records(self.table) if row["job"] == job]
        for row in sorted(rows, key=lambda r: r["recorded_at"]):
            if key is None or row["key"] == key:
                latest[(row["key"], row["logical_date"], row["run_id"], row["attempt"])] = row
        records = [_record(row) for row in latest.values()]
        return sorted(records, key=lambda r: r.started_at, reverse=True)

    def latest(self, job: str, logical_date: date, *, key: str | None = None) -> RunRecord | None:
        """The last attempt of `job` for `logical_date`, or None if it never ran."""
        return latest_attempt(self.history(job, key=key), logical_date)


def latest_attempt(records: Iterable[RunRecord], logical_date: date) -> RunRecord | None:
    """The last attempt among `records` (one job's history) for `logical_date`, or None."""
    return max(
        (r for r in records if r.logical_date == logical_date),
        key=lambda r: (r.attempt, r.started_at),
        default=None,
    )


def _record(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        job=row["job"],
        key=row["key"],
        logical_date=row["logical_date"],
        run_id=row["run_id"],
        attempt=row["attempt"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        error=row["error"],
        report=json.loads(row["report"]) if row["report"] else {},
        host=row["host"],
        pid=row["pid"],
    )
