"""Generated tables read right: random schemas, partitions, mapping, deletion vectors, histories.

Each seed builds a table (`tests/_delta_generated.py`) whose every version's rows the generator
knows. Both our readers (`delta.read` and `format("delta")`) must return them exactly, at the
latest version and at an earlier one; deltalake's reader and DuckDB's `delta_scan` read the same
table as independent witnesses where they can (their known limits are noted in `witnesses`);
a filtered read (file skipping on partition values and statistics) returns what filtering returns.
More seeds: `SPARK_FLOW_DELTA_SEEDS=0-199 pytest tests/spark/test_delta_read_generated.py`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from _delta_generated import Generated, generate
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession
from test_delta_read_mapping import assert_reads_like_deltalake, both_readers

from spark_flow import delta
from spark_flow.delta import _read_spark

# 16, 20, 21 and 52 between them delete rows inline, in files, every row of a file and the only
# row of one; rename, drop and rename a partition column; use the legacy protocol, checkpoints,
# removes and time travel. About 40 s on two cores; SPARK_FLOW_DELTA_SEEDS for more.
SEEDS = [0, 1, 2, 5, 16, 20, 21, 52]


def _seeds() -> list[int]:
    chosen = os.environ.get("SPARK_FLOW_DELTA_SEEDS")
    if not chosen:
        return SEEDS
    first, _, last = chosen.partition("-")
    return list(range(int(first), int(last or first) + 1))


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted texts: NaN equals NaN, and -0.0 differs from 0.0, as they are stored."""
    return sorted(repr(_utc(row)) for row in rows)


def _utc(data: Any) -> Any:
    """`data` with every aware datetime in one spelling of UTC (readers name the zone apart)."""
    if isinstance(data, dt.datetime) and data.tzinfo is not None:
        return data.astimezone(dt.timezone.utc)
    if isinstance(data, dict):
        return {key: _utc(item) for key, item in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_utc(item) for item in data)
    return data


def ours(spark: SparkSession, generated: Generated, version: int | None) -> list[list[str]]:
    return [
        canonical(frame.toArrow().to_pylist())
        for frame in both_readers(spark, generated.root, version)
    ]


def witnesses(generated: Generated, version: int | None) -> dict[str, list[str]]:
    """What the independent readers return, those able to read the table."""
    read = {}
    table = DeltaTable(str(generated.root), version=version)
    # deltalake reads an empty partition value as '', Delta (and we) as null.
    empty = generated.partition_columns[max(generated.versions) if version is None else version]
    rows = pa.table(table.scan()).to_pylist()
    read["deltalake"] = canonical([{**r, **{c: None for c in empty if r[c] == ""}} for r in rows])
    if (
        version is None
        and not (generated.partitioned and generated.mapped)
        and not generated.absolute_paths
    ):
        # DuckDB reads partition columns of column-mapped tables as null (keyed by physical name)
        # and looks for absolute `file:` paths under the table's folder.
        read["duckdb"] = canonical(duckdb_rows(generated.root))
    return read


def versions(generated: Generated) -> list[int | None]:
    """The latest version and an earlier one (time travel), the generator's pick."""
    return [None] if generated.earlier is None else [None, generated.earlier]


@pytest.mark.parametrize("seed", _seeds())
def test_generated_table_reads_as_written(spark: SparkSession, tmp_path: Path, seed: int) -> None:
    generated = generate(seed, tmp_path)
    story = "\n".join(generated.description)
    for version in versions(generated):
        at = version if version is not None else max(generated.versions)
        expected = canonical(generated.versions[at])
        for read in ours(spark, generated, version):
            assert read == expected, f"seed {seed} version {version}\n{story}"
        for name, read in witnesses(generated, version).items():
            assert read == expected, f"{name}: seed {seed} version {version}\n{story}"
        rng = random.Random(seed * 1000 + at)
        condition = predicate(rng, generated, at)
        if condition is not None:
            everything = delta.read(spark, str(tmp_path), version=version).where(condition)
            expected = canonical(everything.toArrow().to_pylist())
            read_path = rng.choice(["spark", "arrow"])  # either reader skips files
            spark.conf.set(_read_spark.READ_PATH_CONF, read_path)
            try:
                skipped = delta.read(spark, str(tmp_path), version=version, filter=condition)
                assert canonical(skipped.toArrow().to_pylist()) == expected, (
                    f"filter {condition!r} ({read_path}): seed {seed} version {version}\n{story}"
                )
            finally:
                spark.conf.unset(_read_spark.READ_PATH_CONF)


def predicate(rng: random.Random, generated: Generated, version: int) -> str | None:
    """A SQL filter on a column of `version`, its literal taken from a row when there is one."""
    types = generated.types[version]
    columns = [name for name, t in types.items() if isinstance(t, str) and t != "binary"]
    if not columns:
        return None
    name = rng.choice(columns)
    column = name if name.isascii() and name.isidentifier() else "`" + name.replace("`", "``") + "`"
    present = [row[name] for row in generated.versions[version] if row[name] is not None]
    operator = rng.choice(["=", "<", "<=", ">", ">=", "!=", "IS NULL", "IS NOT NULL"])
    value = rng.choice(present) if present else None
    if operator.startswith("IS") or value is None:
        return f"{column} {operator if operator.startswith('IS') else 'IS NULL'}"
    if isinstance(value, float) and (not math.isfinite(value) or value == 0):
        # Spark's Parquet filter pushdown drops a row group whose statistics say -0.0 to -0.0
        # on `c = 0.0` (pyarrow writes them so; Spark reads none of its rows): Spark's limit.
        return f"{column} IS NOT NULL"
    return f"{column} {operator} {_literal(rng, types[name], value)}"


def _literal(rng: random.Random, data_type: str, value: Any) -> str:
    if data_type == "string":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if data_type == "boolean":
        return "true" if value else "false"
    if data_type == "date":
        return f"DATE '{value.isoformat()}'"
    if data_type in ("timestamp", "timestamp_ntz"):
        text = f"'{value.replace(tzinfo=None).isoformat(sep=' ')}'"
        keyword = "TIMESTAMP" if data_type == "timestamp" else "TIMESTAMP_NTZ"
        return rng.choice([text, f"{keyword} {text}"])  # a string Spark casts, or a typed one
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value)


def _batch(start: int, count: int, *, wide: bool = False) -> pa.Table:
    ids = range(start, start + count)
    columns = {
        "id": pa.array(ids, pa.int64()),
        "p": pa.array([["a", "b c", None, "é/=%"][i % 4] for i in ids]),
        "amount": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
    }
    if wide:  # columns a schema merge adds
        columns["added"] = pa.array([f"x{i}" for i in ids])
        columns["s"] = pa.array([{"a": i} for i in ids], pa.struct([("a", pa.int32())]))
    return pa.table(columns)


def test_tables_deltalake_rewrote_read_like_deltalake(spark: SparkSession, tmp_path: Path) -> None:
    """Schema merges, delete / update / merge (deltalake rewrites files: no deletion vectors,
    even with them enabled), compaction, a checkpoint and a vacuum: every version read alike."""
    path = str(tmp_path)
    write_deltalake(path, _batch(0, 40), partition_by=["p"],
                    configuration={"delta.enableDeletionVectors": "true"})  # fmt: skip
    write_deltalake(path, _batch(40, 20, wide=True), mode="append", schema_mode="merge")
    DeltaTable(path).delete("id % 7 = 0")
    DeltaTable(path).update(predicate="id > 30", updates={"amount": "amount * 2"})
    source = _batch(50, 20, wide=True)
    merge = DeltaTable(path).merge(source, "t.id = s.id", source_alias="s", target_alias="t")
    merge.when_matched_update_all().when_not_matched_insert_all().execute()
    DeltaTable(path).optimize.compact()
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, _batch(100, 5), mode="append", schema_mode="merge")

    for version in (1, 4, 5):  # after the schema merge, the merge, the compaction
        assert_reads_like_deltalake(spark, tmp_path, version, duckdb=False)
    assert_reads_like_deltalake(spark, tmp_path)  # and DuckDB
    DeltaTable(path).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert_reads_like_deltalake(spark, tmp_path)
