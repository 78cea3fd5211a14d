"""Why a Delta log cannot be read, told in the protocol's terms instead of deltalake's.

deltalake refuses a broken log with its kernel's text ("Kernel error: Expected contiguous
commit files ..."). When it does, `diagnose` lists and reads the log itself (only then: a
healthy table costs nothing here) and names the table, the version and the defect. Data files
the log names but the store lacks are found by `missing_files` before any Spark job.
"""

from __future__ import annotations

import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from spark_flow import storage
from spark_flow.delta._log_values import metadata_defect, partition_value_defect
from spark_flow.delta._protocol import Protocol, unreadable
from spark_flow.errors import (
    InvalidArgumentError,
    InvalidDeltaLogError,
    SparkFlowError,
    UnsupportedDeltaFeatureError,
)

log = logging.getLogger(__name__)

LOG_DIR = "_delta_log"
COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
"""A commit file's name (its version in group 1); checkpoints and log compaction files differ."""
# Classic `v.checkpoint.parquet`, multi-part `v.checkpoint.i.n.parquet`, v2 `v.checkpoint.<id>.*`
_CHECKPOINT = re.compile(
    r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?(?:\.[\w-]+)?\.(?:parquet|json)$"
)
_TABLE_STATE = ("protocol", "metaData")
_READERS = 16
DV_FILE = re.compile(r"deletion_vector_[0-9a-fA-F-]{36}\.bin")
_RESTORE = "Restore the log's files from a backup or a copy of the table"


@dataclass
class _Log:
    """What a listing of `_delta_log/` holds: commit files and complete checkpoints by version,
    and what multi-part checkpoints lack."""

    commits: dict[int, str] = field(default_factory=dict)
    checkpoints: dict[int, list[str]] = field(default_factory=dict)
    incomplete: dict[int, str] = field(default_factory=dict)
    has_hint: bool = False

    @classmethod
    def listed(cls, path: str) -> _Log:
        found = cls()
        parts: dict[tuple[int, int], dict[int, str]] = {}
        for name in storage.list_files(storage.join(path, LOG_DIR)):
            if commit := COMMIT_FILE.match(name):
                found.commits[int(commit.group(1))] = name
            elif checkpoint := _CHECKPOINT.match(name):
                version, part, of = checkpoint.groups()
                if part is None:
                    found.checkpoints.setdefault(int(version), []).append(name)
                else:
                    parts.setdefault((int(version), int(of)), {})[int(part)] = name
            found.has_hint = found.has_hint or name == "_last_checkpoint"
        # A multi-part checkpoint counts only when every part is there.
        for (version, of), seen in parts.items():
            lacking = sorted(set(range(1, of + 1)) - set(seen))
            if lacking:
                found.incomplete[version] = (
                    f"its multi-part checkpoint of version {version} lacks part(s) {lacking} of "
                    f"{of}"
                )
            else:
                found.checkpoints.setdefault(version, []).extend(seen[i] for i in sorted(seen))
        return found


def diagnose(path: str, version: int | None) -> SparkFlowError | None:
    """The error that says why the log at `path` (read at `version`) is unreadable, or None.

    None where no log is listed; the caller then reports the library's failure as a storage
    error. Where the store lists a log but shows no defect this function knows, the log holds
    an action deltalake rejects (a field of the wrong type, a schema that does not parse).
    """
    listing = _Log.listed(path)
    if not listing.commits and not listing.checkpoints:
        # A hint left behind by a log whose files are gone (deleted by hand, half copied).
        return _hint_defect(path, listing) if listing.has_hint else None
    try:
        return (
            _out_of_range(path, listing, version)
            or _hint_defect(path, listing)
            or _checkpoint_defect(path, listing, version)
            or _gap(path, listing, version)
            or _actions_defect(path, listing, version)
            or InvalidDeltaLogError(
                path,
                _target(listing, version),
                "an action in it does not parse as the protocol defines it, though no commit or "
                "checkpoint is missing or torn (deltalake's error, this error's cause, names the "
                "field)",
                _RESTORE,
            )
        )
    except InvalidDeltaLogError as found:  # a commit that is not JSON, found while replaying
        return found


def _out_of_range(path: str, listing: _Log, version: int | None) -> InvalidArgumentError | None:
    """A version after the latest, or before the first the log can still rebuild.

    Versions before the earliest checkpoint are gone once Delta's log cleanup removed their
    commits: a normal state of an old table, not a broken log.
    """
    if version is None:
        return None
    latest = _target(listing, None)
    earliest = 0 if 0 in listing.commits or not listing.checkpoints else min(listing.checkpoints)
    if earliest <= version <= latest:
        return None
    cleaned = (
        f"; the commits before {earliest} were removed by log cleanup (delta.logRetentionDuration)"
        if version < earliest
        else ""
    )
    return InvalidArgumentError(
        "version",
        f"the table at {path!r} has versions {earliest} to {latest}, not {version}{cleaned}",
        "Pick a version in that range (see the table's history).",
    )


def _hint_defect(path: str, listing: _Log) -> InvalidDeltaLogError | None:
    """`_last_checkpoint` that does not parse, or names a checkpoint the log lacks."""
    if not listing.has_hint:
        return None
    text = storage.read_text(storage.join(path, LOG_DIR, "_last_checkpoint")) or ""
    advice = (
        "Delete _delta_log/_last_checkpoint: it is only a hint, and readers then find the "
        "latest checkpoint by listing the log"
    )
    try:
        hinted = json.loads(text)["version"]
    except (ValueError, KeyError, TypeError):
        return InvalidDeltaLogError(path, None, "_delta_log/_last_checkpoint is not JSON", advice)
    if hinted in listing.incomplete:
        return InvalidDeltaLogError(path, hinted, listing.incomplete[hinted], _checkpoint_advice())
    if hinted not in listing.checkpoints:
        return InvalidDeltaLogError(
            path,
            hinted if isinstance(hinted, int) else None,
            f"_delta_log/_last_checkpoint names a checkpoint at version {hinted}, which the log "
            "does not have",
            advice,
        )
    return None


def _start(listing: _Log, version: int) -> int:
    """The version a reader starts replaying at: after the latest checkpoint, else 0."""
    below = [v for v in listing.checkpoints if v <= version]
    return max(below) + 1 if below else 0


def _target(listing: _Log, version: int | None) -> int:
    return max([*listing.commits, *listing.checkpoints]) if version is None else version


def _gap(path: str, listing: _Log, version: int | None) -> InvalidDeltaLogError | None:
    """The first commit missing between where a reader starts and the version it reads."""
    target = _target(listing, version)
    start = _start(listing, target)
    missing = [v for v in range(start, target + 1) if v not in listing.commits]
    if not missing:
        return None
    first = missing[0]
    broken = [v for v in listing.incomplete if first <= v <= target]
    if broken:  # the checkpoint that would have stood in for the missing commits
        return InvalidDeltaLogError(
            path, max(broken), listing.incomplete[max(broken)], _checkpoint_advice()
        )
    return InvalidDeltaLogError(
        path,
        first,
        f"the commit file of version {first} ({LOG_DIR}/{first:020d}.json) is missing, so the "
        f"versions after it cannot be rebuilt ({len(missing)} missing up to version {target})",
        _restore_or_read_before(first),
    )


def replayed_commits(path: str, version: int) -> list[tuple[int, list[dict[str, Any]]]]:
    """The commits a reader of `version` replays after the checkpoint it starts from, in order:
    (version, actions) of each."""
    listing = _Log.listed(path)
    commits = [v for v in range(_start(listing, version), version + 1) if v in listing.commits]

    def read(commit: int) -> tuple[int, list[dict[str, Any]]]:
        advice = _restore_or_read_before(commit)
        return commit, _actions(path, commit, listing.commits[commit], advice)

    if len(commits) < 2 or storage.is_local(path):
        return [read(commit) for commit in commits]
    # On an object store each commit is a request: several at once, not one round trip each.
    with ThreadPoolExecutor(max_workers=min(len(commits), _READERS)) as pool:
        return list(pool.map(read, commits))


def _restore_or_read_before(version: int) -> str:
    """Restore the log, or time-travel to before `version` (a checkpoint or commits rebuild it)."""
    earlier = f", or read version={version - 1} or earlier" if version > 0 else ""
    return _RESTORE + earlier


def _actions_defect(path: str, listing: _Log, version: int | None) -> SparkFlowError | None:
    """A commit that is not JSON, a protocol that breaks the spec or is unsupported, metadata
    or partition values that do not parse, or no protocol or metadata where the replay
    (without a checkpoint) must find both."""
    target = _target(listing, version)
    start = _start(listing, target)
    protocol: tuple[int, Protocol] | None = None
    metadata: tuple[int, Any] | None = None
    readable = False  # whether `metadata` parses, so partition values can be checked by it
    values: SparkFlowError | None = None  # the first partition value that does not parse
    for commit in range(start, target + 1):
        advice = _restore_or_read_before(commit)
        actions = _actions(path, commit, listing.commits[commit], advice)
        for action in actions:
            if "protocol" in action:
                raw = action["protocol"]
                protocol = (commit, Protocol.from_action(raw if isinstance(raw, dict) else {}))
            if "metaData" in action:
                metadata = (commit, action["metaData"])
                readable = metadata_defect(action["metaData"]) is None
        if values is None and metadata is not None and readable:
            values = _values_defect(path, commit, actions, metadata[1])
    if protocol is not None:
        at, found = protocol
        defect = found.defect()
        if defect is not None:
            return InvalidDeltaLogError(
                path, at, defect, "The table's writer broke the Delta protocol; " + _RESTORE
            )
        refused = unreadable(found)
        if refused:
            return unsupported(path, at, refused)
    if metadata is not None and (defect := metadata_defect(metadata[1])) is not None:
        return InvalidDeltaLogError(
            path, metadata[0], defect, "The table's writer broke the Delta protocol; " + _RESTORE
        )
    if values is not None or start > 0:  # a checkpoint holds what this replay did not see
        return values
    lacking = [name for name, seen in (("protocol", protocol), ("metaData", metadata)) if not seen]
    if lacking:
        return InvalidDeltaLogError(
            path,
            target,
            f"no {' and no '.join(lacking)} action in versions 0 to {target}; every table "
            "has both from its first commit",
            f"{_RESTORE}; the commit of version 0 must hold them",
        )
    return None


def _values_defect(
    path: str, version: int, actions: list[dict[str, Any]], metadata: dict[str, Any]
) -> InvalidDeltaLogError | None:
    """The first add action of commit `version` whose partition value does not parse."""
    for action in actions:
        defect = partition_value_defect(action.get("add"), metadata)
        if defect is not None:
            return InvalidDeltaLogError(path, version, defect, _restore_or_read_before(version))
    return None


def _actions(path: str, version: int, name: str, advice: str) -> list[dict[str, Any]]:
    """The actions of a JSON log file; InvalidDeltaLogError when a line is not a JSON object."""
    text = storage.read_text(storage.join(path, LOG_DIR, name)) or ""
    actions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError:
            action = None
        if not isinstance(action, dict):
            raise InvalidDeltaLogError(
                path,
                version,
                f"line {number} of {LOG_DIR}/{name} is not a JSON object (a torn or foreign write)",
                advice,
            )
        actions.append(action)
    return actions


def _checkpoint_advice() -> str:
    return (
        "Delete that checkpoint's files and _delta_log/_last_checkpoint if the log still has "
        f"every commit before it (readers then replay those); otherwise {_RESTORE[0].lower()}"
        f"{_RESTORE[1:]}"
    )


def _checkpoint_defect(path: str, listing: _Log, version: int | None) -> SparkFlowError | None:
    """A checkpoint the reader starts from that does not read, names a sidecar that is gone,
    or lacks the protocol or metadata every checkpoint holds."""
    target = _target(listing, version)
    below = [v for v in listing.checkpoints if v <= target]
    if not below:
        return None
    at = max(below)
    present = set(storage.list_files(storage.join(path, LOG_DIR, "_sidecars")))
    held: set[str] = set()
    for name in listing.checkpoints[at]:
        sidecars, kinds = _checkpoint_contents(path, at, name)
        held |= kinds
        missing = sorted(set(sidecars) - present)
        if missing:
            return InvalidDeltaLogError(
                path,
                at,
                f"its checkpoint {LOG_DIR}/{name} names {len(missing)} sidecar file(s) that "
                f"{LOG_DIR}/_sidecars/ lacks, first {missing[0]!r}",
                _checkpoint_advice(),
            )
    lacking = [kind for kind in _TABLE_STATE if kind not in held]
    if lacking:
        return InvalidDeltaLogError(
            path,
            at,
            f"its checkpoint {LOG_DIR}/{listing.checkpoints[at][0]} holds no "
            f"{' and no '.join(lacking)} action, which every checkpoint carries for the table",
            _checkpoint_advice(),
        )
    return None


def _checkpoint_contents(path: str, version: int, name: str) -> tuple[list[str], set[str]]:
    """The sidecar files a checkpoint names, and which of protocol and metaData it holds;
    InvalidDeltaLogError when it does not read."""
    if name.endswith(".json"):
        rows = _actions(path, version, name, _checkpoint_advice())
        sidecars = [row["sidecar"] for row in rows if "sidecar" in row]
        kinds = {kind for kind in _TABLE_STATE for row in rows if row.get(kind)}
    else:
        data = storage.read_bytes(storage.join(path, LOG_DIR, name)) or b""
        try:
            checkpoint = pq.ParquetFile(pa.BufferReader(data))
            columns = [c for c in ("sidecar", *_TABLE_STATE) if c in checkpoint.schema_arrow.names]
            read = checkpoint.read(columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidDeltaLogError(
                path,
                version,
                f"its checkpoint {LOG_DIR}/{name} is not a readable Parquet file (a torn or "
                "foreign write)",
                _checkpoint_advice(),
            ) from exc
        has = {c: read[c].null_count < read.num_rows for c in columns}
        sidecars = [s for s in read["sidecar"].to_pylist() if s] if "sidecar" in has else []
        kinds = {kind for kind in _TABLE_STATE if has.get(kind)}
    # The protocol keeps sidecars in _delta_log/_sidecars/ and recommends naming them alone.
    names = [unquote(str(sidecar["path"])).rsplit("/", 1)[-1] for sidecar in sidecars]
    return names, kinds


def unsupported(path: str, version: int, refused: list[str]) -> UnsupportedDeltaFeatureError:
    """The refusal of a table whose protocol needs what the reader does not handle."""
    return UnsupportedDeltaFeatureError(
        f"reading the table at {path!r} (version {version}): it needs {', '.join(refused)}, "
        "which this reader does not handle, and reading its files without would return wrong "
        "rows or values",
        "Read it with the delta-spark connector (backend 'jvm', see enable_delta), or have its "
        "owner drop the feature (ALTER TABLE ... DROP FEATURE)",
    )


def unreadable_deletion_vector(path: str, version: int, cause: Exception) -> InvalidDeltaLogError:
    """The error for a deletion vector deltalake could not read (its file gone or torn)."""
    named = DV_FILE.search(str(cause))
    which = f"{named.group(0)!r}, " if named else ""
    return InvalidDeltaLogError(
        path,
        version,
        f"a deletion vector file the log names, {which}is missing or does not read (deltalake's "
        "error, this error's cause, says which and why), so the rows it deletes are unknown",
        "Restore the file from a backup, or read a version from before the delete that wrote "
        "it (the table's history names it)",
    )


def missing_files(root: str, uris: list[str]) -> list[str]:
    """The files among `uris` (the log's data files of the table at `root`, as
    `_log.data_file_uri` locates them) that do not exist.

    Locally each file is looked up (a stat costs less than walking every partition folder); on
    a store one listing of the table's prefix replaces a request per file, and only files it
    does not show (absolute paths elsewhere, names the store spells differently) are looked up
    one by one. bench/bench_delta_log.py measures both ways.
    """
    location = storage.folder(root).rstrip("/") + "/"
    if storage.is_local(root):  # `uris` are plain paths here
        return [uri.removeprefix(location) for uri in uris if not os.path.exists(uri)]
    present = set(storage.list_files(root, recursive=True))
    # On a store each is the table's URI, encoded (`s3://b/my%20table/`), and the file's key
    # as the log encodes it (`country=a%2520b` for the folder Spark named `country=a%20b`).
    table = location.split("://", 1)[1].rstrip("/")
    depth = table.count("/")
    missing = []
    for uri in uris:
        parts = uri.split("://", 1)[-1].split("/", depth + 1)
        inside = len(parts) == depth + 2 and unquote("/".join(parts[:-1])) == table
        if inside and (parts[-1] in present or unquote(parts[-1]) in present):
            continue
        if not storage.exists(uri):
            missing.append(parts[-1] if inside else uri)
    return missing
