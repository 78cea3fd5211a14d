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
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from test_delta_read_mapping import both_readers

from spark_flow import delta

SEEDS = list(range(12))


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
        condition = predicate(random.Random(seed * 1000 + at), generated, at)
        if condition is not None:
            skipped = delta.read(spark, str(tmp_path), version=version, filter=condition)
            everything = delta.read(spark, str(tmp_path), version=version).where(condition)
            assert canonical(skipped.toArrow().to_pylist()) == canonical(
                everything.toArrow().to_pylist()
            ), f"filter {condition!r}: seed {seed} version {version}\n{story}"


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
    if isinstance(value, float) and not math.isfinite(value):
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
