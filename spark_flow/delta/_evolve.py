"""The schema a delta-rs write commits, and the columns it adds before its data.

deltalake's append commits no schema change, so the columns a `merge_schema` write adds are
committed first, on the snapshot the write's checks read:

- by deltalake's `alter.add_columns` on tables without column mapping;
- on column-mapped tables (where deltalake refuses to add columns, and its overwrite would
  keep `delta.columnMapping.maxColumnId` as it was) by a `metaData` commit of our own: the
  log's schema with the new columns' ids and physical names (`_mapping.mapping_of`), and
  `maxColumnId` raised, as the protocol asks of the commit that introduces them. It is created
  as the next version with a put-if-absent, so a concurrent commit makes it fail as a commit
  race does: the write is planned again on the newer snapshot.

Either way a data commit that fails afterwards leaves the columns added, null in every row.

The data files were written for the mapping of the first plan: a plan made again must map
the columns the same way (`same_mapping`), or the files would be committed under ids and names
the log does not give them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError

from spark_flow import storage
from spark_flow.delta._mapping import MAX_COLUMN_ID
from spark_flow.delta._schema import commit_schema
from spark_flow.errors import UnsupportedDeltaFeatureError

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from spark_flow.delta._mapping import ColumnMapping
    from spark_flow.delta.rs import WritePlan

log = logging.getLogger(__name__)


def committed_schema(table: DeltaTable | None, plan: WritePlan) -> DeltaSchema:
    """The schema the write's commit names (`_schema.commit_schema`); on a column-mapped table
    the log's fields with their mapping, the new ones' included."""
    if plan.mapping is not None:
        return DeltaSchema.from_json(plan.mapping.schema_json)
    return commit_schema(table, plan.schema, overwrite_schema=plan.request.overwrite_schema)


def add_columns(
    table: DeltaTable, schema: DeltaSchema, plan: WritePlan, *, partial: bool
) -> DeltaTable:
    """Commit the columns of `schema` that `table` lacks, before the write's data; returns the
    table at the snapshot to commit the data on. `partial`: an overwrite of some partitions.

    Raises:
        CommitFailedError: another commit took the version the mapped columns' commit needed.
    """
    if plan.mapping is not None:
        return _commit_mapped(table, plan.root, plan.mapping) if plan.mapping.added else table
    request = plan.request
    # Only a whole-table overwrite commits a new schema: an append, and an overwrite of some
    # partitions (committed as an append with removes), must add new columns first.
    if request.merge_schema and (request.mode == "append" or partial):
        existing = {field.name.lower(): field for field in table.schema().fields}
        # Changed fields too: deltalake merges a struct column's new fields into the existing.
        new = [field for field in schema.fields if existing.get(field.name.lower()) != field]
        if new:
            log.info("adding columns %s to %s", [f.name for f in new], table.table_uri)
            table.alter.add_columns(new)
    return table


def _commit_mapped(table: DeltaTable, root: str, mapping: ColumnMapping) -> DeltaTable:
    """The metaData commit of the columns `mapping` adds; `table` loaded at its version."""
    metadata = table.metadata()
    action: dict[str, Any] = {
        "id": metadata.id,
        "name": metadata.name,
        "description": metadata.description,
        "format": {"provider": "parquet", "options": {}},
        "schemaString": mapping.schema_json,
        "partitionColumns": list(metadata.partition_columns),
        "configuration": {**metadata.configuration, MAX_COLUMN_ID: str(mapping.max_column_id)},
        "createdTime": metadata.created_time,
    }
    info = {
        "timestamp": int(time.time() * 1000),
        "operation": "ADD COLUMNS",
        "operationParameters": {"columns": json.dumps(list(mapping.added))},
        "engineInfo": "spark_flow (delta-rs backend)",
    }
    lines = [{"commitInfo": info}, {"metaData": {k: v for k, v in action.items() if v is not None}}]
    version = table.version() + 1
    name = f"{version:020d}.json"
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    if not storage.create_if_absent(storage.join(root, "_delta_log"), name, text):
        raise CommitFailedError(f"another writer committed version {version} of {root} first")
    log.info("added columns %s to %s at version %d", list(mapping.added), root, version)
    table.load_as_version(version)
    return table


def same_mapping(before: WritePlan, after: WritePlan) -> WritePlan:
    """`after` (the write planned again on a newer snapshot), when it maps every column as the
    files `before` planned were written (it may know more columns: the files lack them).

    Raises:
        UnsupportedDeltaFeatureError: a concurrent commit changed the table's column mapping.
    """
    written, now = before.mapping, after.mapping
    if (written is None and now is None) or (
        written is not None
        and now is not None
        and all(field in now.physical.fields for field in written.physical.fields)
    ):
        return after
    raise UnsupportedDeltaFeatureError(
        f"a write to {before.request.path!r} racing a commit that changed its column mapping "
        "(its columns' ids or physical names) after the write's files were written",
        "Write again: nothing was committed, and the next write follows the new mapping",
    )
