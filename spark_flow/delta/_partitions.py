"""Which partitions a delta-rs write touches: its files' values, the ones it replaces.

- `folder_values`: a file's partition values from the Hive-style folders Spark's writer made.
- `check_replaced`: a `replace_where` overwrite holds rows of the replaced partitions only.
- `replaced_by_data`: Delta's dynamic partition overwrite: the table's files in the partitions
  the new files fall into, to remove in the same commit. Values are compared typed (the log's,
  as deltalake reads them; the new files', cast by Arrow from their text), so one value
  spelled two ways (`1.0E20` and `1e+20`, a timestamp's offsets) is one partition.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake.transaction import AddAction, RemoveAction

from spark_flow.delta._files import HIVE_NULL, as_instant_text, spark_partition_text
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import InvalidArgumentError

if TYPE_CHECKING:
    from deltalake import DeltaTable


def folder_values(
    relative: Path, partition_by: list[str], micros: list[str]
) -> dict[str, str | None]:
    """The partition values of the file at `relative` (below the write's root), as logged."""
    values: dict[str, str | None] = {}
    for part in relative.parts[: len(partition_by)]:
        name, _, raw = part.partition("=")
        column = unquote(name)
        value = None if raw == HIVE_NULL else unquote(raw)
        values[column] = spark_partition_text(value, column, micros)
    return values


def check_replaced(request: WriteRequest, micros: list[str], actions: list[AddAction]) -> None:
    """Every file of a partition replacement lies in the partitions it replaces."""
    wanted = {c: as_instant_text(v) if c in micros else v for c, v in request.replace_where or ()}
    for action in actions:
        found = {c: action.partition_values.get(c) for c in wanted}
        if found != wanted:
            raise InvalidArgumentError(
                "replace_where",
                f"it replaces {wanted} of {request.path!r}, but the data has rows in {found}",
                "Filter the data to the replaced partitions, or widen replace_where.",
            )


def replaced_by_data(
    table: DeltaTable, actions: list[AddAction], partition_by: list[str]
) -> list[RemoveAction]:
    """Remove actions of `table`'s files in the partitions `actions` add files to."""
    listed = pa.table(table.get_add_actions(flatten=True))
    columns = [f"partition.{c}" for c in partition_by]
    typed = {c: listed.schema.field(f"partition.{c}").type for c in partition_by}
    touched = {
        tuple(_typed(action.partition_values.get(c), typed[c]) for c in partition_by)
        for action in actions
    }
    now = int(time.time() * 1000)
    return [
        # deltalake lists paths as the log holds them, URI-encoded; an action takes them raw
        RemoveAction(unquote(row["path"]), data_change=True, deletion_timestamp=now)
        for row in listed.select(["path", *columns]).to_pylist()
        if tuple(row[c] for c in columns) in touched
    ]


def _typed(text: str | None, data_type: pa.DataType) -> Any:
    """A logged partition value as deltalake types it (None stays None)."""
    if text is None:
        return None
    return pa.array([text]).cast(data_type)[0].as_py()
