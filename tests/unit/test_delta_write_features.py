"""Writes into tables Databricks and delta-spark make today: the writer features they enable.

Each feature is either honoured (`v2Checkpoint`: deltalake's checkpoint after our commit is a
V2-spec one) or refused by name, with why, before any file is written. The refusals that rest
on deltalake's commit refusing a feature are checked against deltalake itself, so an upgrade
that starts honouring one fails here and asks for the allow-list to be revisited. No Spark:
the files are written with Arrow, as the `delta` data source's workers write them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import _delta_logs as logs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _delta_tables import TableBuilder
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import CommitFailedError
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_flow.delta import _compact, _read, _read_arrow, maintenance, rs
from spark_flow.delta._protocol import WRITER_REFUSALS
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import UnsupportedDeltaFeatureError

SCHEMA = StructType([StructField("id", LongType()), StructField("day", StringType())])
# The reader-writer features; the others are writer features only.
READER_WRITER = {"columnMapping", "deletionVectors", "timestampNtz", "typeWidening",
                 "typeWidening-preview", "v2Checkpoint", "vacuumProtocolCheck"}  # fmt: skip
# What Databricks enables on new tables, with the configuration that puts each in use.
DATABRICKS = {
    "inCommitTimestamp": {"delta.enableInCommitTimestamps": "true"},
    "rowTracking": {"delta.enableRowTracking": "true"},
    "domainMetadata": {},
    "clustering": {},
    "checkpointProtection": {"delta.requireCheckpointProtectionBeforeVersion": "1"},
    "vacuumProtocolCheck": {},
    "typeWidening": {"delta.enableTypeWidening": "true"},
}


def with_features(path: str, *features: str, configuration: dict[str, str] | None = None) -> str:
    """The table at `path` on reader 3 / writer 7 listing `features` where the protocol puts
    them."""
    readers = sorted(f for f in features if f in READER_WRITER)
    logs.set_protocol(
        path,
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": readers,
         "writerFeatures": sorted(features)},
    )  # fmt: skip
    logs.set_metadata(path, configuration=configuration or {})
    return path


def append(path: str, ids: list[int], *, txn_version: int) -> rs.WriteResult:
    """Our write of `ids` to `path` as the `delta` source's workers and driver make it."""
    request = WriteRequest(path, mode="append", app_id="app", txn_version=txn_version)
    plan = rs.plan_write(request, SCHEMA)
    if isinstance(plan, rs.WriteResult):  # a replay of a committed txn, skipped
        return plan
    rows = pa.table({"id": pa.array(ids, pa.int64()), "day": [f"d{i}" for i in ids]})
    return rs.commit_written(plan, rs.file_writer(plan, plan.root).write(rows.to_batches()))


def our_rows(path: str) -> list[dict[str, Any]]:
    """The rows our reader's plan and Arrow workers read."""
    plan = _read.plan(path)
    arrow = to_arrow_schema(plan.schema)
    return pa.concat_tables(_read_arrow.read_file(plan, f, arrow) for f in plan.files).to_pylist()


def test_appends_to_a_v2_checkpoint_table_leave_v2_spec_checkpoints_every_reader_reads(
    tmp_path: Path,
) -> None:
    # Delta lets a v2Checkpoint table hold V2-spec checkpoints under classic names; a V1-spec
    # one (no checkpointMetadata action) there would break the table.
    path = logs.table(tmp_path / "t", commits=2)
    logs.set_metadata(
        path, configuration={"delta.checkpointPolicy": "v2", "delta.checkpointInterval": "1"}
    )
    logs.v2_checkpoint(path, form="json", sidecars=True)  # UUID-named, as delta-spark writes

    result = append(path, [9], txn_version=7)

    assert result.committed
    assert result.table_version == 2
    commit = logs.actions(path, 2)
    assert [next(iter(a)) for a in commit] == ["commitInfo", "add", "txn"]
    assert commit[2]["txn"]["version"] == 7
    log_dir = Path(path) / "_delta_log"
    checkpoint = pq.read_table(log_dir / f"{2:020d}.checkpoint.parquet").to_pylist()
    assert {"version": 2} in [row["checkpointMetadata"] for row in checkpoint]
    assert json.loads((log_dir / "_last_checkpoint").read_text())["version"] == 2
    expected = [{"id": 0, "day": "d0"}, {"id": 1, "day": "d1"}, {"id": 9, "day": "d9"}]
    # deltalake's `to_pyarrow_table` refuses the v2Checkpoint reader feature; its engine reads.
    query = QueryBuilder().register("t", DeltaTable(path)).execute("SELECT * FROM t")
    for reading in (
        pa.table(query.read_all()).to_pylist(),
        duckdb_rows(path),
        our_rows(path),
    ):
        assert sorted(reading, key=lambda row: row["id"]) == expected
    assert append(path, [9], txn_version=7).skipped_reason  # its txn read from the checkpoint


@pytest.mark.parametrize(
    ("features", "fragment"),
    [
        (("inCommitTimestamp",), "inCommitTimestamp (every commit must start with a commitInfo"),
        (("rowTracking", "domainMetadata"), "rowTracking (added files must carry baseRowId"),
        (("domainMetadata",), "domainMetadata (deltalake's commit refuses"),
        (("clustering", "domainMetadata"), "clustering (its clustering columns live in a"),
        (("vacuumProtocolCheck",), "vacuumProtocolCheck (deltalake's commit refuses"),
        (("checkpointProtection",), "checkpointProtection (deltalake's commit refuses"),
        (("typeWidening",), "typeWidening (deltalake's commit refuses"),
        (("futureFeature",), "futureFeature (unknown to this backend)"),
    ],
    ids=["ict", "row-tracking", "domain-metadata", "clustering", "vacuum-check",
         "checkpoint-protection", "widening", "unknown"],
)  # fmt: skip
def test_a_write_refused_for_a_feature_names_it_and_why_before_any_file(
    tmp_path: Path, features: tuple[str, ...], fragment: str
) -> None:
    configuration = {k: v for f in features for k, v in DATABRICKS.get(f, {}).items()}
    path = logs.table(tmp_path / "t", commits=1)
    with_features(path, *features, configuration=configuration)
    before = sorted(Path(path).rglob("*"))

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        append(path, [1], txn_version=1)

    assert fragment in caught.value.feature
    assert "backend 'jvm'" in caught.value.fix
    assert sorted(Path(path).rglob("*")) == before


@pytest.mark.parametrize(
    "feature", sorted(f for f, why in WRITER_REFUSALS.items() if "deltalake's commit" in why)
)
def test_deltalake_still_refuses_what_we_refuse_because_it_does(
    tmp_path: Path, feature: str
) -> None:
    # Were deltalake to honour one of these, our refusal would need another reason or none.
    path = with_features(logs.table(tmp_path / "t", commits=1), feature)

    table = DeltaTable(path)
    with pytest.raises(CommitFailedError, match="Unsupported table features"):
        table.create_write_transaction([], "append", table.schema())

    assert not logs.commit_file(path, 1).exists()


@pytest.fixture
def aged_table(tmp_path: Path) -> tuple[TableBuilder, Path]:
    """A deletion-vector table whose files are a month old, and an orphan file of the same age."""
    table = TableBuilder(tmp_path / "t", [("id", "long")], deletion_vectors=True)
    add = table.add([{"id": 1}, {"id": 2}])
    table.commit(add)
    table.commit(*table.delete(add, [1], inline=False))
    orphan = table.root / "part-orphan.parquet"
    pq.write_table(pa.table({"id": [3]}), orphan)
    month_ago = time.time() - 30 * 86400
    for folder, _, names in os.walk(table.root):
        for name in names:
            os.utime(os.path.join(folder, name), (month_ago, month_ago))
    return table, orphan


def vacuum(table: TableBuilder) -> maintenance.VacuumReport:
    """Vacuum everything no version uses, however young."""
    return maintenance.vacuum(str(table.root), retention_hours=0, enforce_retention_duration=False)


def test_vacuum_keeps_the_deletion_vector_files_the_log_names(
    aged_table: tuple[TableBuilder, Path],
) -> None:
    table, orphan = aged_table

    report = vacuum(table)

    assert report.files == (orphan.name,)
    assert [p.name for p in table.root.rglob("deletion_vector_*.bin")]
    assert our_rows(str(table.root)) == [{"id": 1}]


def test_vacuum_with_the_protocol_check_refuses_writer_features_we_do_not_honour(
    aged_table: tuple[TableBuilder, Path],
) -> None:
    table, orphan = aged_table
    protocol = {
        **table.protocol,
        "readerFeatures": ["deletionVectors", "vacuumProtocolCheck"],
        "writerFeatures": ["deletionVectors", "rowTracking", "vacuumProtocolCheck"],
    }
    table.commit({"protocol": protocol})

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        vacuum(table)

    assert "it needs rowTracking, which" in caught.value.feature
    assert orphan.exists()
    protocol["writerFeatures"].remove("rowTracking")  # the check passes: vacuum runs
    table.commit({"protocol": protocol})
    report = vacuum(table)
    assert report.files == (orphan.name,)


def test_optimize_refuses_what_our_commit_refuses_before_any_spark_job(tmp_path: Path) -> None:
    # deltalake's commit would refuse the swap only after Spark rewrote the files.
    path = logs.table(tmp_path / "t", commits=3)  # three small files: one bin to compact
    with_features(path, "inCommitTimestamp", configuration=DATABRICKS["inCommitTimestamp"])

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        _compact.plan(path, Path(path), wanted=None, target_file_size=1 << 20, min_files=2)

    assert "optimizing the table" in caught.value.feature
    assert "inCommitTimestamp (every commit must start" in caught.value.feature
    assert "OPTIMIZE" in caught.value.fix


def test_a_feature_a_concurrent_commit_enables_is_refused_on_retry(tmp_path: Path) -> None:
    # deltalake rejects our commit for the concurrent metadata change; committing again on top
    # of it must pass the writer-feature check again, or the new constraint goes unchecked.
    path = logs.table(tmp_path / "t", commits=1)
    request = WriteRequest(path, mode="append")
    plan = rs.plan_write(request, SCHEMA)
    assert isinstance(plan, rs.WritePlan)
    files = rs.file_writer(plan, plan.root).write(
        pa.table({"id": pa.array([-1], pa.int64()), "day": ["d"]}).to_batches()
    )
    metadata = next(a for a in logs.actions(path, 0) if "metaData" in a)
    metadata["metaData"]["configuration"]["delta.constraints.pos"] = "id > 0"
    logs.commit_file(path, 1).write_text(
        json.dumps({"protocol": {"minReaderVersion": 1, "minWriterVersion": 3}})
        + "\n" + json.dumps(metadata) + "\n"
    )  # fmt: skip

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        rs.commit_written(plan, files)

    assert "checkConstraints (every row must be checked" in caught.value.feature
    assert not logs.commit_file(path, 2).exists()
    assert not any(Path(plan.root, f.path).exists() for f in files)
