"""The reader cases of Delta Acceptance Testing (DAT), as delta-spark lays their tables out.

Each case of DAT's `generated_tables.py` is built here our own way (`TableBuilder`): the files
and commits delta-spark writes for it, with its spellings (partition folders escaped by Spark
and paths URI-encoded again in the log, a `commitInfo` per commit, `__HIVE_DEFAULT_PARTITION__`
folders, `_change_data/` files, checkpoints with typed `stats_parsed` /
`partitionValues_parsed` columns). Every version is read by both our readers and compared in
full with the rows the case wrote and with deltalake's reader; a filter skips files and still
returns exactly the matching rows.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _delta_generated_stats import stats_json
from _delta_logs import set_metadata, set_protocol
from _delta_tables import TableBuilder
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from test_delta_read_mapping import both_readers

from spark_flow import delta
from spark_flow.delta import _read
from spark_flow.errors import InvalidArgumentError, InvalidDeltaLogError

UTC = dt.timezone.utc
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
SAMPLE = [("letter", "string"), ("int", "long"), ("date", "date")]  # DAT's get_sample_data


def _commit_info(operation: str, mode: str) -> dict[str, Any]:
    parameters = {"mode": mode, "partitionBy": "[]"}
    return {"commitInfo": {"timestamp": 0, "operation": operation,
                           "operationParameters": parameters, "isBlindAppend": mode == "Append",
                           "engineInfo": "Apache-Spark/3.5.0 Delta-Lake/3.1.0"}}  # fmt: skip


def _removed(add: dict[str, Any]) -> dict[str, Any]:
    file = add["add"]
    return {"remove": {"path": file["path"], "deletionTimestamp": 0, "dataChange": True,
                       "extendedFileMetadata": True, "partitionValues": file["partitionValues"],
                       "size": file["size"]}}  # fmt: skip


def _file(
    table: TableBuilder, rows: list[dict[str, Any]], values: dict[str, str | None] | None = None,
    *, folder: str = "", logged: str | None = None, stats: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """`rows` in a new file under `folder` (as Spark names it on disk), its add action with
    delta-spark's statistics; `logged` is its folder as the log spells it."""
    name = f"part-00000-{len(list(table.root.rglob('*.parquet')))}-c000.snappy.parquet"
    add = table.add(rows, values, relative=f"{folder}{name}")
    add["add"]["path"] = f"{folder if logged is None else logged}{name}"
    data = [f for f in table.schema["fields"] if f["name"] not in table.partition_columns]
    add["add"]["stats"] = stats_json(data, rows) if stats else None
    return add


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: _utc(v) for k, v in r.items()} for r in rows), key=repr)


def _read_rows(frame: DataFrame) -> list[dict[str, Any]]:
    return _sorted(frame.toArrow().to_pylist())


def assert_reads(
    spark: SparkSession, root: Path, expected: list[dict[str, Any]], version: int | None = None
) -> None:
    """Both our readers and deltalake (and DuckDB at the latest) return exactly `expected`."""
    expected = _sorted(expected)
    for frame in both_readers(spark, root, version):
        assert _read_rows(frame) == expected
    assert _sorted(pa.table(DeltaTable(str(root), version=version).scan()).to_pylist()) == expected
    if version is None:
        assert _sorted(duckdb_rows(root)) == expected


def assert_filters(spark: SparkSession, root: Path, predicate: str, files: int) -> None:
    """A filter skips to `files` files and reads exactly the rows the predicate matches."""
    everything = delta.read(spark, str(root)).where(predicate)
    assert _read_rows(delta.read(spark, str(root), filter=predicate)) == _read_rows(everything)
    assert len(_read.plan(str(root), predicate=predicate).files) == files


def test_multi_partitioned(spark: SparkSession, tmp_path: Path) -> None:
    """Partition columns string / date / binary, nulls, `/%20%f` and an emoji as values; an
    append without partitionBy, then an overwrite."""
    table = TableBuilder(tmp_path, [("letter", "string"), ("date", "date"), ("data", "binary"),
                                    ("number", "long")],
                         features=False, partition_columns=("letter", "date", "data"))  # fmt: skip
    first = [("a", "1970-01-01", "hello", 1), ("b", "1970-01-01", "world", 2),
             ("b", "1970-01-02", "world", 3)]  # fmt: skip
    second = [("a", None, "x", 4), (None, None, None, 5)]
    third = [("/%20%f", "1970-01-01", "hello", 6), ("b", "1970-01-01", "😈", 7)]
    # Spark escapes `/` and `%` in a folder name; delta-spark's log encodes the path again.
    folders = {"/%20%f": ("%2F%2520%25f", "%252F%252520%2525f")}
    versions: dict[int, list[dict[str, Any]]] = {}
    live: list[dict[str, Any]] = []
    current: list[tuple[Any, ...]] = []
    for rows, mode in ((first, "ErrorIfExists"), (second, "Append"), (third, "Overwrite")):
        adds = []
        for letter, date, data, number in rows:
            disk, logged = folders.get(letter or "", (letter or HIVE_NULL,) * 2)
            tail = f"/date={date or HIVE_NULL}/data={data or HIVE_NULL}/"
            values = {"letter": letter, "date": date, "data": data}
            adds.append(_file(table, [{"number": number}], values, folder=f"letter={disk}{tail}",
                              logged=f"letter={logged}{tail}"))  # fmt: skip
        removes = [_removed(a) for a in live] if mode == "Overwrite" else []
        live = adds if mode == "Overwrite" else live + adds
        current = rows if mode == "Overwrite" else current + rows
        version = table.commit(*adds, *removes, _commit_info("WRITE", mode))
        versions[version] = [
            {"letter": letter, "date": date and dt.date.fromisoformat(date),
             "data": data and data.encode(), "number": number}
            for letter, date, data, number in current
        ]  # fmt: skip

    assert_reads(spark, tmp_path, versions[2], 2)  # the append without partitionBy
    assert_reads(spark, tmp_path, versions[3])
    assert_filters(spark, tmp_path, "letter = '/%20%f'", 1)
    assert_filters(spark, tmp_path, "data = X'F09F9888'", 1)


def test_multi_partitioned_2_with_a_checkpoint_of_typed_partition_values(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Boolean, TIMESTAMP and decimal partition columns, the timestamps spelt both ways
    delta-spark writes them (before 3.3: zoneless; since: ISO 8601 in UTC), then a checkpoint
    holding them typed (`partitionValues_parsed`) and the statistics only as a struct."""
    table = TableBuilder(tmp_path, [("bool", "boolean"), ("time", "timestamp"),
                                    ("amount", "decimal(38,18)"), ("int", "long")],
                         features=False, partition_columns=("bool", "time", "amount"))  # fmt: skip
    rows = [(True, dt.datetime(1970, 1, 1, tzinfo=UTC), "200.00", 1),
            (True, dt.datetime(1970, 1, 1, 12, 30, tzinfo=UTC), "200.00", 2),
            (False, dt.datetime(1970, 1, 2, 8, 45, tzinfo=UTC), "-2342342.23423", 3)]  # fmt: skip
    adds = []
    for flag, time, amount, number in rows:
        spelt = time.strftime("%Y-%m-%d %H:%M:%S" if number < 3 else "%Y-%m-%dT%H:%M:%S.%fZ")
        text = str(Decimal(amount).quantize(Decimal(10) ** -18))
        folder = f"bool={str(flag).lower()}/time={time:%Y-%m-%d %H%%3A%M%%3A%S}/amount={text}/"
        values = {"bool": str(flag).lower(), "time": spelt, "amount": text}
        adds.append(_file(table, [{"int": number}], values, folder=folder,
                          logged=folder.replace("%", "%25").replace(" ", "%20")))  # fmt: skip
    table.commit(*adds, _commit_info("WRITE", "ErrorIfExists"))
    table.checkpoint(adds, stats_as_json=False)
    expected = [{"bool": f, "time": t, "amount": Decimal(a), "int": n} for f, t, a, n in rows]

    assert_reads(spark, tmp_path, expected)
    assert_filters(spark, tmp_path, "time = '1970-01-01 12:30:00'", 1)
    # A double holds -2342342.23423 * 10^18 too roughly for delta-rs to skip by it.
    assert_filters(spark, tmp_path, "amount = -2342342.23423", 3)
    assert_filters(spark, tmp_path, "amount = 200", 2)
    assert_filters(spark, tmp_path, "int > 1", 2)


def _create_with(table: TableBuilder, properties: dict[str, str]) -> None:
    """`properties` set on the table as its creating commit (version 0) set them."""
    table.configuration.update(properties)
    set_metadata(str(table.root), configuration=properties)


def _sample(seed: int) -> list[dict[str, Any]]:
    """Five rows of DAT's sample data shape, a null letter among them; ints from 10 * seed."""
    return [
        {"letter": "abc"[n % 3] if n != 2 else None, "int": 10 * seed + n,
         "date": dt.date(1970 + 10 * seed, n + 1, 1)}
        for n in range(5)
    ]  # fmt: skip


CHECKPOINTS = {
    # case: (writeStatsAsJson, writeStatsAsStruct, statistics in the commits)
    "with_checkpoint": (True, True, True),  # delta-spark's defaults
    "stats_as_struct": (False, True, True),
    "no_stats": (False, False, False),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_checkpoint_cases(spark: SparkSession, tmp_path: Path, case: str) -> None:
    """checkpointInterval 2: appends, a checkpoint at version 2 written with the statistics as
    the case's table properties say, a commit after it; skipping trusts only what is there."""
    as_json, as_struct, with_stats = CHECKPOINTS[case]
    table = TableBuilder(tmp_path, SAMPLE, features=False)
    properties = {"delta.checkpointInterval": "2",
                  "delta.checkpoint.writeStatsAsJson": str(as_json).lower(),
                  "delta.checkpoint.writeStatsAsStruct": str(as_struct).lower()}  # fmt: skip
    _create_with(table, properties)
    live, rows = [], []
    for seed in range(3):
        live.append(_file(table, _sample(seed), stats=with_stats))
        rows += _sample(seed)
        table.commit(live[-1], _commit_info("WRITE", "Append"))
        if table.version == 2:
            table.checkpoint(live, stats_as_json=as_json, stats_as_struct=as_struct)

    assert_reads(spark, tmp_path, rows)
    assert_reads(spark, tmp_path, rows[:10], version=2)
    assert_filters(spark, tmp_path, "int >= 10 AND int < 20", 1 if with_stats else 3)
    assert_filters(spark, tmp_path, "date < DATE '1980-01-01'", 1 if with_stats else 3)


def test_no_replay(spark: SparkSession, tmp_path: Path) -> None:
    """Overwrites with a checkpoint at version 2, the commits before it deleted and the files
    vacuumed: the latest version reads, a version the log lost is our error."""
    table = TableBuilder(tmp_path, SAMPLE, features=False)
    _create_with(table, {"delta.checkpointInterval": "2"})
    live: list[dict[str, Any]] = []
    for seed in range(3):
        add = _file(table, _sample(seed))
        table.commit(add, *map(_removed, live), _commit_info("WRITE", "Overwrite"))
        if table.version == 2:
            table.checkpoint([add])
        live = [add]
    kept = str(tmp_path / live[0]["add"]["path"])
    for file in tmp_path.rglob("*.parquet"):
        if "_delta_log" not in file.parts and str(file) != kept:
            file.unlink()
    for version in (0, 1):
        os.remove(tmp_path / "_delta_log" / f"{version:020d}.json")

    assert_reads(spark, tmp_path, _sample(2))
    with pytest.raises(InvalidArgumentError, match="removed by log cleanup") as caught:
        delta.read(spark, str(tmp_path), version=0)
    assert caught.value.argument == "version"
    with pytest.raises(InvalidDeltaLogError, match="missing"):
        delta.read(spark, str(tmp_path), version=2)


def test_cdf(spark: SparkSession, tmp_path: Path) -> None:
    """Change data feed on: an update (c -> a) and a delete (a) rewrite the file and add change
    files under `_change_data/`, which no read of the table returns."""
    table = TableBuilder(tmp_path, SAMPLE, features=False)
    table.protocol = {"minReaderVersion": 1, "minWriterVersion": 4}
    set_protocol(str(tmp_path), table.protocol)
    _create_with(table, {"delta.enableChangeDataFeed": "true"})
    rows = _sample(0)
    first = _file(table, rows)
    table.commit(first, _commit_info("WRITE", "Append"))
    updated = [{**r, "letter": "a" if r["letter"] == "c" else r["letter"]} for r in rows]
    kept = [r for r in updated if r["letter"] != "a"]
    before = first
    for after_rows, operation in ((updated, "UPDATE"), (kept, "DELETE")):
        after = _file(table, after_rows)
        changes = pa.Table.from_pylist([{**r, "_change_type": "delete"} for r in rows])
        (tmp_path / "_change_data").mkdir(exist_ok=True)
        change = tmp_path / "_change_data" / f"cdc-{table.version}.c000.snappy.parquet"
        pq.write_table(changes, change)
        cdc = {"cdc": {"path": f"_change_data/{change.name}", "partitionValues": {},
                       "size": change.stat().st_size, "dataChange": False}}  # fmt: skip
        table.commit(_removed(before), after, cdc, _commit_info(operation, "Overwrite"))
        before = after

    assert_reads(spark, tmp_path, kept)
    assert_reads(spark, tmp_path, updated, version=2)
    assert_reads(spark, tmp_path, rows, version=1)


FEATURES = {
    # case: (protocol, configuration, metadata of the `int` column)
    "check_constraints": (
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"],
         "writerFeatures": ["appendOnly", "checkConstraints", "deletionVectors", "invariants"]},
        {"delta.enableDeletionVectors": "true", "delta.constraints.const1": "int > 0"}, {},
    ),
    "generated_columns": (
        {"minReaderVersion": 1, "minWriterVersion": 4}, {},
        {"delta.generationExpression": "CAST(`int` * 2 AS BIGINT)"},
    ),
    "iceberg_compat_v1": (
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["columnMapping"],
         "writerFeatures": ["appendOnly", "columnMapping", "icebergCompatV1", "invariants"]},
        {"delta.enableIcebergCompatV1": "true"}, {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FEATURES))
def test_tables_with_writer_features_read_as_written(
    spark: SparkSession, tmp_path: Path, case: str
) -> None:
    protocol, configuration, column = FEATURES[case]
    mapping = "name" if "columnMapping" in protocol.get("readerFeatures", []) else "none"
    table = TableBuilder(tmp_path, SAMPLE, mapping=mapping)
    table.protocol = protocol
    table.configuration.update(configuration)
    table.schema["fields"][1]["metadata"].update(column)
    table.commit({"protocol": protocol}, table._metadata())
    rows = [{**r, "int": r["int"] + 1} for r in _sample(0)]
    table.commit(_file(table, rows), _commit_info("WRITE", "Append"))

    assert_reads(spark, tmp_path, rows)
