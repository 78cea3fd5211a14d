"""Delta tables built in the tests, then changed or broken on purpose, per the Delta protocol.

Good tables come from deltalake (`table`); everything else edits their `_delta_log/` by hand:
protocol and metadata actions rewritten, commit files removed or garbled, checkpoints written
the ways the protocol allows (classic by deltalake, multi-part, v2 with sidecars, log
compaction files by hand from the actions deltalake's own checkpoint holds).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

Action = dict[str, Any]


def table(path: Path, commits: int = 3, **kwargs: Any) -> str:
    """A table of `commits` appends of one row each (`id` = the version, `day` = 'd<version>')."""
    for version in range(commits):
        frame = pd.DataFrame({"id": [version], "day": [f"d{version}"]})
        write_deltalake(str(path), frame, mode="append", **kwargs)
    return str(path)


def commit_file(path: str, version: int) -> Path:
    return Path(path) / "_delta_log" / f"{version:020d}.json"


def actions(path: str, version: int) -> list[Action]:
    return [json.loads(line) for line in commit_file(path, version).read_text().splitlines()]


def rewrite(path: str, version: int, change: Callable[[list[Action]], list[Action]]) -> None:
    """Replace the actions of commit `version` with `change(actions)`."""
    lines = [json.dumps(action) for action in change(actions(path, version))]
    commit_file(path, version).write_text("\n".join(lines) + "\n")


def without(kind: str) -> Callable[[list[Action]], list[Action]]:
    """A `rewrite` change that drops every action of `kind` ("protocol", "metaData" ...)."""
    return lambda found: [a for a in found if kind not in a]


def set_protocol(path: str, protocol: Mapping[str, Any], version: int = 0) -> None:
    """Make the protocol action of commit `version` exactly `protocol` (added if it had none)."""
    rewrite(path, version, lambda found: [*without("protocol")(found), {"protocol": protocol}])


def set_metadata(
    path: str,
    *,
    configuration: Mapping[str, str] | None = None,
    field_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    version: int = 0,
) -> None:
    """Add table properties and column metadata (by column name) to the metaData of `version`."""

    def change(found: list[Action]) -> list[Action]:
        for action in found:
            if "metaData" in action:
                metadata = action["metaData"]
                metadata["configuration"].update(configuration or {})
                schema = json.loads(metadata["schemaString"])
                for column in schema["fields"]:
                    column["metadata"].update((field_metadata or {}).get(column["name"], {}))
                metadata["schemaString"] = json.dumps(schema)
        return found

    rewrite(path, version, change)


def column_mapped(path: Path, *, legacy: bool) -> str:
    """A one-commit table in column mapping mode `name`, on reader 2 or on table features.

    The files keep the column names they were written with, which are also the physical names
    the annotations give, so the table reads the same mapped or not.
    """
    built = table(path, commits=1)
    physical = {
        "id": {"delta.columnMapping.id": 1, "delta.columnMapping.physicalName": "id"},
        "day": {"delta.columnMapping.id": 2, "delta.columnMapping.physicalName": "day"},
    }
    set_metadata(
        built,
        configuration={"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "2"},
        field_metadata=physical,
    )
    features = {"readerFeatures": ["columnMapping"], "writerFeatures": ["columnMapping"]}
    set_protocol(
        built,
        {"minReaderVersion": 2, "minWriterVersion": 5}
        if legacy
        else {"minReaderVersion": 3, "minWriterVersion": 7, **features},
    )
    return built


# -- checkpoints ---------------------------------------------------------------------------------


def checkpoint_actions(path: str) -> pa.Table:
    """The actions of a classic checkpoint of the table's latest version, made by deltalake."""
    table_ = DeltaTable(path)
    table_.create_checkpoint()
    version = table_.version()
    checkpoint = Path(path) / "_delta_log" / f"{version:020d}.checkpoint.parquet"
    return pq.read_table(checkpoint)


def multi_part_checkpoint(path: str, parts: int = 2) -> int:
    """Replace the classic checkpoint of the latest version by `parts` parts; its version."""
    checkpointed = checkpoint_actions(path)
    version = DeltaTable(path).version()
    log_dir = Path(path) / "_delta_log"
    (log_dir / f"{version:020d}.checkpoint.parquet").unlink()
    # Every part holds whole rows; a file's add lives in exactly one part (protocol: "Multi-part").
    size = -(-checkpointed.num_rows // parts)
    for part in range(parts):
        name = f"{version:020d}.checkpoint.{part + 1:010d}.{parts:010d}.parquet"
        pq.write_table(checkpointed.slice(part * size, size), log_dir / name)
    (log_dir / "_last_checkpoint").write_text(
        json.dumps({"version": version, "size": checkpointed.num_rows, "parts": parts})
    )
    return version


def v2_checkpoint(path: str, *, form: str, sidecars: bool) -> int:
    """Replace the latest classic checkpoint by a UUID-named v2 one (`json` or `parquet`).

    With `sidecars`, the add actions move to a Parquet file in `_delta_log/_sidecars/`, which
    the checkpoint names in a `sidecar` action. The table gains the `v2Checkpoint` feature in
    the commit of the checkpointed version, so a replay of the commits agrees with it.
    """
    checkpointed = checkpoint_actions(path)
    version = DeltaTable(path).version()
    log_dir = Path(path) / "_delta_log"
    (log_dir / f"{version:020d}.checkpoint.parquet").unlink()
    features = ["v2Checkpoint"]
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": features,
                "writerFeatures": features}  # fmt: skip
    set_protocol(path, protocol, version)
    rows = checkpointed.to_pylist()  # Arrow maps come as lists of (key, value) pairs
    for row in rows:
        if row["protocol"] is not None:
            row["protocol"] = protocol
    adds = [row for row in rows if row["add"] is not None]
    kept = [row for row in rows if row["add"] is None] if sidecars else rows
    kept.append({"checkpointMetadata": {"version": version}})
    if sidecars:
        (log_dir / "_sidecars").mkdir(exist_ok=True)
        sidecar = log_dir / "_sidecars" / f"{uuid.uuid4()}.parquet"
        add_field = checkpointed.schema.field("add")
        pq.write_table(pa.Table.from_pylist(adds, schema=pa.schema([add_field])), sidecar)
        stat = sidecar.stat()
        kept.append(
            {
                "sidecar": {
                    "path": sidecar.name,
                    "sizeInBytes": stat.st_size,
                    "modificationTime": int(stat.st_mtime * 1000),
                }
            }
        )
    name = log_dir / f"{version:020d}.checkpoint.{uuid.uuid4()}.{form}"
    if form == "json":
        name.write_text("\n".join(json.dumps(_as_json(row)) for row in kept) + "\n")
    else:
        metadata_field = pa.field(
            "checkpointMetadata", pa.struct([pa.field("version", pa.int64(), nullable=False)])
        )
        schema = checkpointed.schema.append(metadata_field)
        pq.write_table(pa.Table.from_pylist(kept, schema=schema), name)
    (log_dir / "_last_checkpoint").write_text(json.dumps({"version": version, "size": len(kept)}))
    return version


_MAPS = {"partitionValues", "tags", "options", "configuration"}


def _as_json(value: Any) -> Any:
    """An Arrow row as the JSON of a commit line: no null fields, maps as objects."""
    if isinstance(value, dict):
        return {
            k: dict(v) if k in _MAPS else _as_json(v) for k, v in value.items() if v is not None
        }
    return value


def compaction_file(path: str, start: int, end: int) -> Path:
    """A log compaction file `start.end.compacted.json`: the reconciled actions of `start..end`.

    Per the protocol, adds removed in the range are dropped, later actions win, and commitInfo
    is left out.
    """
    adds: dict[str, Action] = {}
    removes: dict[str, Action] = {}
    latest: dict[str, Action] = {}
    for version in range(start, end + 1):
        for action in actions(path, version):
            if "add" in action:
                adds[action["add"]["path"]] = action
                removes.pop(action["add"]["path"], None)
            elif "remove" in action:
                adds.pop(action["remove"]["path"], None)
                removes[action["remove"]["path"]] = action
            elif "commitInfo" not in action:
                latest[next(iter(action))] = action
    target = Path(path) / "_delta_log" / f"{start:020d}.{end:020d}.compacted.json"
    lines = [*latest.values(), *removes.values(), *adds.values()]
    target.write_text("\n".join(json.dumps(a) for a in lines) + "\n")
    return target
