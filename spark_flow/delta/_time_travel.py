"""Time travel by timestamp: the version of a table that was current at a point in time.

Delta's rule (delta-spark's `timestampAsOf`): the latest version committed at or before the
timestamp; a timestamp before the earliest version the log can rebuild, or after the latest
commit, is an error rather than a guess. A commit's timestamp is its `inCommitTimestamp` where
the table has in-commit timestamps (from their enablement version on), else the commit file's
modification time, made strictly increasing as delta-spark does (a commit whose file is not
newer than its predecessor's counts as one millisecond later), so clock skew between writers
cannot make a later version look older.

A timestamp without a zone is read in a time zone the caller names (a session's
`spark.sql.session.timeZone`), like Spark's cast of a string to a timestamp.
"""

from __future__ import annotations

import json
import os
import re
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spark_flow import storage
from spark_flow.delta import _log
from spark_flow.delta._validate import COMMIT_FILE, LOG_DIR
from spark_flow.errors import InvalidArgumentError, NotADeltaTableError

AsOf = datetime | date | str
"""A point in time: an aware or naive `datetime`, a `date` (its midnight), or an ISO string
(`2024-01-31`, `2024-01-31 10:00:00`, `2024-01-31T10:00:00.5+02:00`)."""

_ENABLED = "delta.enableInCommitTimestamps"
_ENABLED_FROM = "delta.inCommitTimestampEnablementVersion"
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")
_MS = timedelta(milliseconds=1)


def parse(value: AsOf, *, time_zone: str | None) -> datetime:
    """`value` as an aware datetime; a zoneless one is in `time_zone` (None: this process's).

    Raises:
        InvalidArgumentError: not a datetime, date or ISO timestamp string, or an unknown zone.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgumentError(
                "timestamp",
                f"expected an ISO date or timestamp such as '2024-01-31 10:00:00', got {value!r}",
                "Pass a date, a timestamp, or a datetime object.",
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        raise InvalidArgumentError(
            "timestamp",
            f"expected a datetime, a date or an ISO string, got {type(value).__name__}",
            "Pass e.g. '2024-01-31 10:00:00' or datetime(2024, 1, 31, 10).",
        )
    if parsed.tzinfo is not None:
        return parsed
    if time_zone is None:
        return parsed.astimezone()  # this process's zone, as Spark's JVM defaults to
    return parsed.replace(tzinfo=zone(time_zone))


def zone(name: str) -> tzinfo:
    """A Spark session time zone: a region ID (`Europe/Paris`), `UTC`/`Z`, or an offset."""
    if name.strip().upper() in {"UTC", "Z", "GMT"}:
        return timezone.utc
    offset = _OFFSET.match(name.strip())
    if offset is not None:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            "time zone",
            f"expected a region ID or an offset such as 'Europe/Paris' or '+02:00', got {name!r}",
            "Set spark.sql.session.timeZone to one, or pass a timestamp with its zone.",
        ) from None


def is_utc(time_zone: str | None) -> bool:
    """Whether `time_zone` (None: this process's) is UTC all year round."""
    found = zone(time_zone) if time_zone is not None else datetime.now().astimezone().tzinfo
    return all(
        found is not None and found.utcoffset(datetime(2024, month, 1)) == timedelta(0)
        for month in (1, 7)
    )


def version_at(path: str, when: datetime) -> int:
    """The latest version of the table at `path` committed at or before `when` (aware).

    Raises:
        NotADeltaTableError: no table is at `path`.
        InvalidArgumentError: `when` is before the earliest version the log can rebuild, or
            after the latest commit.
    """
    table = _log.require_table(path)
    times = _commit_times(path)
    if not times:
        raise NotADeltaTableError(path)
    versions = sorted(times)
    by_file = dict(zip(versions, _increasing([times[v] for v in versions]), strict=True))

    def stamp_of(version: int) -> datetime:
        return by_file[version]

    configuration = table.metadata().configuration
    if configuration.get(_ENABLED, "false").strip().lower() == "true":
        enabled_from = int(configuration.get(_ENABLED_FROM) or versions[0])
        stamped = [v for v in versions if v >= enabled_from]
        before = [v for v in versions if v < enabled_from]
        # In-commit timestamps only grow: a binary search reads a few commits, not all.
        if stamped and (not before or when >= _in_commit_time(path, stamped[0], times)):
            versions = stamped

            def stamp_of(version: int) -> datetime:
                return _in_commit_time(path, version, times)

        else:
            versions = before
    at = bisect_right(range(len(versions)), when, key=lambda i: stamp_of(versions[i]))
    if at == 0:
        raise InvalidArgumentError(
            "timestamp",
            f"{when.isoformat()} is before the earliest version of {path!r} that its log can "
            f"rebuild (version {versions[0]}, committed {stamp_of(versions[0]).isoformat()})",
            "Pass a later timestamp, or a version.",
        )
    last = stamp_of(versions[-1])
    if at == len(versions) and when > last and versions[-1] == max(times):
        raise InvalidArgumentError(
            "timestamp",
            f"{when.isoformat()} is after the latest commit of {path!r} (version "
            f"{versions[-1]}, committed {last.isoformat()})",
            "Pass a timestamp at or before that commit, or read the latest version without one.",
        )
    return versions[at - 1]


def _increasing(stamps: list[datetime]) -> list[datetime]:
    """`stamps` made strictly increasing: each at least a millisecond after the one before."""
    made: list[datetime] = []
    for stamp in stamps:
        made.append(stamp if not made or stamp > made[-1] else made[-1] + _MS)
    return made


def _commit_times(path: str) -> dict[int, datetime]:
    """Version -> modification time of its commit file, for the versions the log can rebuild.

    Where log cleanup removed the first commits, a version counts only from the earliest
    checkpoint on: the versions before it cannot be read any more.
    """
    log_dir = storage.join(path, LOG_DIR)
    listed = _listed_times(log_dir)
    times = {int(m.group(1)): t for name, t in listed.items() if (m := COMMIT_FILE.match(name))}
    if 0 not in times:
        checkpoints = [int(name[:20]) for name in listed if ".checkpoint." in name]
        first = min(checkpoints, default=min(times, default=0))
        times = {v: t for v, t in times.items() if v >= first}
    return times


def _listed_times(log_dir: str) -> dict[str, datetime]:
    """Name -> modification time (UTC) of each file directly in `log_dir`, by one listing."""
    if storage.is_local(log_dir):
        try:
            entries = list(os.scandir(storage.folder(log_dir)))
        except FileNotFoundError:
            return {}
        return {e.name: _millis(e.stat().st_mtime_ns // 1_000_000) for e in entries if e.is_file()}
    from pyarrow.fs import FileSelector, FileType

    store, location = storage.filesystem(log_dir)
    infos = store.get_file_info(FileSelector(location, allow_not_found=True))
    return {
        info.base_name: _aware(info.mtime)
        for info in infos
        if info.type == FileType.File and info.mtime is not None
    }


def _aware(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


def _millis(epoch_ms: int) -> datetime:
    """A time in milliseconds since the epoch, the precision Delta's commit times have."""
    return datetime.fromtimestamp(epoch_ms // 1000, timezone.utc).replace(
        microsecond=epoch_ms % 1000 * 1000
    )


def _in_commit_time(path: str, version: int, times: dict[int, datetime]) -> datetime:
    """The `inCommitTimestamp` of `version`'s commitInfo (its first action); its file's time
    where a writer left none."""
    text = storage.read_text(storage.join(path, LOG_DIR, f"{version:020d}.json"))
    for line in (text or "").splitlines():
        if line.strip():
            stamp = (json.loads(line).get("commitInfo") or {}).get("inCommitTimestamp")
            if isinstance(stamp, int):
                return _millis(stamp)
            break
    return times[version]
