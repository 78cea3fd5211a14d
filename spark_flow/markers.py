"""Isolated Sequencer, data-based: readiness markers between pipelines.

The producer calls `mark_ready` after its data commit; the consumer calls `wait_until_ready`,
then `read_ready` to read exactly the Delta version the marker names, so a newer, half-finished
producer run cannot leak into it. Markers live next to the data, in
`<output>/_spark_flow_ready/<logical date>.json` (and `latest.json`); Delta readers ignore
folders that start with an underscore. Each marker is one small file written whole (a rename
locally, one upload on an object store), so outputs on `s3://`, `gs://` or `abfss://` are
marked and waited for like local ones.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from spark_flow import delta, storage
from spark_flow.errors import InputNotReadyError, InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["Marker", "mark_ready", "marker_path", "read_ready", "wait_until_ready"]

log = logging.getLogger(__name__)

MARKER_DIR = "_spark_flow_ready"
LATEST = "latest"


@dataclass(frozen=True)
class Marker:
    """A producer's statement that `output` is complete for `logical_date`."""

    output: str
    run_id: str
    logical_date: str | None
    created_at: str
    row_count: int | None = None
    table_version: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def marker_path(output: str, logical_date: str | dt.date | None = None) -> str:
    """Where the marker of `output` for `logical_date` (or the latest one) lives.

    Returns:
        An absolute local path for local outputs, a URI for outputs on object stores.
    """
    return storage.join(output, MARKER_DIR, f"{_day(logical_date) or LATEST}.json")


def _day(logical_date: str | dt.date | None) -> str | None:
    """A logical date as markers spell it: a `date` (a runner's `RunContext.logical_date`, or
    a datetime such as Airflow's) as YYYY-MM-DD, the `ds` a scheduler passes as a string."""
    if isinstance(logical_date, dt.datetime):
        return logical_date.date().isoformat()
    if isinstance(logical_date, dt.date):
        return logical_date.isoformat()
    if logical_date is None or isinstance(logical_date, str):
        return logical_date
    raise InvalidArgumentError(
        "logical_date",
        f"expected a date or its YYYY-MM-DD string, got {logical_date!r}",
        "Pass the run's logical date, e.g. run.logical_date or '2024-01-01'.",
    )


def mark_ready(
    output: str,
    *,
    run_id: str,
    logical_date: str | dt.date | None = None,
    row_count: int | None = None,
    table_version: int | None = None,
    **metadata: Any,
) -> Marker:
    """Declare `output` ready; call it only after the data commit succeeded.

    For a Delta output without `table_version`, the table's current version is recorded. The
    marker is written atomically (locally a temporary file, then a rename; on an object store
    one upload); marking the same run twice keeps the first marker.

    Raises:
        InvalidArgumentError: `output` does not exist (nothing was committed to mark).
        StorageError: the output's store cannot be read or written from this process.
    """
    logical_date = _day(logical_date)
    storage.check_reachable(output)  # an unknown bucket is named, not taken for no output
    if not storage.exists(output):
        raise InvalidArgumentError(
            "output",
            f"{output!r} does not exist, so there is no committed data to mark ready",
            "Call mark_ready after the write that creates it succeeded.",
        )
    existing = _read(marker_path(output, logical_date))
    if existing is not None and existing.run_id == run_id:
        log.info("marker for run %s of %s already written", run_id, output)
        return existing
    if table_version is None:
        info = delta.table_info(output)
        table_version = None if info is None else info.version
    marker = Marker(
        output=output,
        run_id=run_id,
        logical_date=logical_date,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        row_count=row_count,
        table_version=table_version,
        metadata={"host": socket.gethostname(), **metadata},
    )
    for key in {logical_date or LATEST, LATEST}:
        path = marker_path(output, None if key == LATEST else key)
        storage.write_text_atomically(path, json.dumps(asdict(marker)))
    log.info("marked %s ready (run %s, version %s)", output, run_id, table_version)
    return marker


def _read(path: str) -> Marker | None:
    text = storage.read_text(path)
    return None if text is None else Marker(**json.loads(text))


def wait_until_ready(
    output: str,
    *,
    timeout: float,
    poke_interval: float = 5.0,
    logical_date: str | dt.date | None = None,
) -> Marker:
    """Wait for the marker of `output` (for `logical_date`, else the latest one).

    Checks every `poke_interval` seconds, sleeping in between. The marker returned names the
    table as `output` does, where it was found: the producer's spelling may be a path relative
    to its own working folder, or a mount this process does not have.

    Raises:
        InputNotReadyError: no marker within `timeout` seconds; it names the marker path.
    """
    if timeout < 0 or poke_interval <= 0:
        raise InvalidArgumentError(
            "timeout/poke_interval",
            f"got timeout={timeout}, poke_interval={poke_interval}",
            "Use timeout >= 0 and poke_interval > 0 (seconds).",
        )
    logical_date = _day(logical_date)
    path = marker_path(output, logical_date)
    started = time.monotonic()
    # A bucket that does not exist holds no marker still to come: say so now, not at timeout.
    storage.check_reachable(output)
    while True:
        marker = _read(path)  # one file per logical date: another date's marker is elsewhere
        if marker is not None:
            return replace(marker, output=output)
        waited = time.monotonic() - started
        if waited >= timeout:
            raise InputNotReadyError(output, path, logical_date, waited)
        time.sleep(min(poke_interval, timeout - waited))


def read_ready(spark: SparkSession, marker: Marker) -> DataFrame:
    """Read a Delta output at the version its marker names (the latest if it names none)."""
    return delta.read(spark, marker.output, version=marker.table_version)
