"""`delta.read(..., filter=)`: files skipped by partition values and statistics, rows filtered.

Skipping must be conservative: whatever it leaves out, the rows read are exactly the rows that
match, for every predicate form, on both readers (Spark's scan and the Arrow data source).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _delta_generated_stats import stats_json
from _delta_tables import TableBuilder
from deltalake import write_deltalake
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.delta import _read, _read_spark

BATCHES, ROWS = 20, 100


@pytest.fixture(scope="module")
def sorted_batches(tmp_path_factory: pytest.TempPathFactory) -> str:
    """20 appends of sorted ids (deltalake writes min/max/nullCount), one null id, 2 parts."""
    path = str(tmp_path_factory.mktemp("skipping") / "table")
    for batch in range(BATCHES):
        ids = list(range(batch * ROWS, (batch + 1) * ROWS))
        frame = pd.DataFrame(
            {"id": pd.array(ids if batch else [None, *ids[1:]], dtype="Int64"),
             "part": "a" if batch < BATCHES / 2 else "b",
             "name": [f"n{i}" for i in ids]}
        )  # fmt: skip
        write_deltalake(path, frame, mode="append", partition_by=["part"])
    return path


@pytest.fixture(params=["spark", "arrow"])
def read_path(request: pytest.FixtureRequest, spark: SparkSession) -> Iterator[str]:
    spark.conf.set(_read_spark.READ_PATH_CONF, request.param)
    try:
        yield request.param
    finally:
        spark.conf.unset(_read_spark.READ_PATH_CONF)


def expected_ids(predicate: object) -> list[int | None]:
    ids: list[int | None] = [None, *range(1, BATCHES * ROWS)]
    return sorted((i for i in ids if predicate(i)), key=lambda i: -1 if i is None else i)


PREDICATES = [
    ("id >= 1000 AND id < 1010", lambda i: i is not None and 1000 <= i < 1010, 1),
    ("id = 5 OR id = 1995", lambda i: i in (5, 1995), 2),
    ("id IS NULL", lambda i: i is None, 1),
    ("id BETWEEN 150 AND 250", lambda i: i is not None and 150 <= i <= 250, 2),
    ("NOT (id < 1990)", lambda i: i is not None and i >= 1990, 1),
    ("part = 'b' AND id < 1100", lambda i: i is not None and 1000 <= i < 1100, 1),
    ("id IN (3, 1500)", lambda i: i in (3, 1500), 2),
    # Every file skipped: the data source then gets a partition of Spark's own, with no file.
    ("id > 5000", lambda i: False, 0),
    # Spark-only SQL that delta-rs cannot use for skipping: every file is scanned, rows right.
    ("id > 1990 AND `name` LIKE 'n199%'", lambda i: i is not None and i > 1990, BATCHES),
]


@pytest.mark.parametrize("case", PREDICATES, ids=[p[0] for p in PREDICATES])
def test_a_sql_filter_skips_files_and_reads_exactly_the_matching_rows(
    spark: SparkSession, sorted_batches: str, read_path: str, case: tuple
) -> None:
    predicate, matches, files = case
    plan = _read.plan(sorted_batches, predicate=predicate)
    rows = delta.read(spark, sorted_batches, filter=predicate).select("id").collect()

    assert (len(plan.files), plan.files_in_table) == (files, BATCHES)
    key = lambda i: -1 if i is None else i  # noqa: E731
    assert sorted((r.id for r in rows), key=key) == expected_ids(matches)


def test_a_column_filter_reads_the_matching_rows(spark: SparkSession, sorted_batches: str) -> None:
    rows = delta.read(spark, sorted_batches, filter=F.col("id").between(10, 12)).collect()

    assert sorted(r.id for r in rows) == [10, 11, 12]


def test_spark_scans_only_the_files_left_after_skipping(
    spark: SparkSession, sorted_batches: str
) -> None:
    frame = delta.read(spark, sorted_batches, filter="id >= 1000 AND id < 1010")

    assert len(frame.inputFiles()) == 1


def test_files_named_by_absolute_uris_survive_skipping(
    spark: SparkSession, tmp_path: Path, read_path: str
) -> None:
    # deltalake lists such a file as the table's path followed by the URI, still encoded.
    table = TableBuilder(tmp_path, [("id", "long"), ("p", "long")], partition_columns=("p",))
    table.commit(
        table.add([{"id": 1}], {"p": "1"}, absolute=True, relative="a b/p%20q é.parquet"),
        table.add([{"id": 2}], {"p": "2"}, absolute=True, relative="c/d.parquet"),
        table.add([{"id": 3}], {"p": "3"}, relative="e f/g.parquet"),
    )

    rows = delta.read(spark, str(tmp_path), filter="p <= 2").collect()

    assert sorted(row.id for row in rows) == [1, 2]
    assert len(_read.plan(str(tmp_path), predicate="p <= 2").files) == 2


@pytest.mark.parametrize(
    "predicate",
    ["d = 978717917231933506.8604905661", "d >= 978717917231933506.8604905661",
     "e > 12.339999999999999999", "d38 = 12345678901234567890123", "w = 1234567.891"],
)  # fmt: skip
def test_decimal_literals_a_double_cannot_hold_skip_no_matching_file(
    spark: SparkSession, tmp_path: Path, read_path: str, predicate: str
) -> None:
    # Exact decimal statistics, as delta-spark writes them; delta-rs parses the literal as a
    # double, which rounds past 15 significant digits, and scales that double to the column's
    # scale: in Spark's default decimal(38,18), 1234567.891 became 1234567.890999999916.
    table = TableBuilder(tmp_path, [("d", "decimal(28,10)"), ("e", "decimal(10,2)"),
                                    ("d38", "decimal(38,0)"), ("w", "decimal(38,18)")])  # fmt: skip
    row = {"d": Decimal("978717917231933506.8604905661"), "e": Decimal("12.34"),
           "d38": Decimal("12345678901234567890123"), "w": Decimal("1234567.891")}  # fmt: skip
    add = table.add([row])
    add["add"]["stats"] = stats_json(table.schema["fields"], [row])
    table.commit(add)

    assert delta.read(spark, str(tmp_path), filter=predicate).count() == 1


@pytest.mark.parametrize("predicate", ["s = 'back\\\\slash'", "s IN ('a', 'back\\\\slash')"])
def test_a_backslash_in_a_string_literal_skips_no_matching_file(
    spark: SparkSession, tmp_path: Path, read_path: str, predicate: str
) -> None:
    # Spark reads `\\` as one backslash, DataFusion as two. One value per file, with statistics.
    table = TableBuilder(tmp_path, [("s", "string")])
    for value in ["back\\slash", "a", "z"]:
        add = table.add([{"s": value}])
        add["add"]["stats"] = stats_json(table.schema["fields"], [{"s": value}])
        table.commit(add)

    skipped = delta.read(spark, str(tmp_path), filter=predicate)
    filtered = delta.read(spark, str(tmp_path)).where(predicate)

    assert sorted(skipped.collect()) == sorted(filtered.collect())
    assert filtered.count() >= 1


def test_a_timestamp_delta_rs_cannot_skip_by_still_reads(
    spark: SparkSession, tmp_path: Path, read_path: str
) -> None:
    # delta-rs casts timestamps to nanoseconds, which end before 1677, and raises a bare Exception.
    table = TableBuilder(tmp_path, [("ts", "timestamp")])
    row = {"ts": dt.datetime(1000, 5, 11, 14, 4, 51, 142487, tzinfo=dt.timezone.utc)}
    add = table.add([row])
    add["add"]["stats"] = stats_json(table.schema["fields"], [row])
    table.commit(add)

    frame = delta.read(spark, str(tmp_path), filter="ts <= TIMESTAMP '1000-05-11 14:04:51.142487'")

    assert frame.selectExpr("CAST(ts AS STRING)").first()[0] == "1000-05-11 14:04:51.142487"


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [("id = 1", [1]), ("country = 'São Paulo'", [2]), ("country = 'a%2Fb c'", [3])],
)
def test_skipping_keeps_the_files_of_a_table_whose_path_needs_encoding(
    spark: SparkSession, tmp_path: Path, predicate: str, expected: list[int]
) -> None:
    # deltalake spells such files with the root encoded and the key partly not; every file a
    # filter matched was dropped, and a `%` in a partition value failed the read as missing.
    table = str(tmp_path / "sales 2024" / "café")
    rows = [(1, "fr"), (2, "São Paulo"), (3, "a%2Fb c")]
    delta.write(spark.createDataFrame(rows, "id long, country string"), table,
                partition_by=["country"])  # fmt: skip

    assert [row.id for row in delta.read(spark, table, filter=predicate).collect()] == expected
    assert sorted(row.id for row in delta.read(spark, table).collect()) == [1, 2, 3]


@pytest.fixture(scope="module")
def typed_files(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One row per file, with delta-spark's statistics: integers, a float, a decimal, text."""
    root = tmp_path_factory.mktemp("typed") / "table"
    fields = [("id", "long"), ("i", "integer"), ("b", "byte"), ("f", "float"),
              ("amt", "decimal(10,2)"), ("s", "string")]  # fmt: skip
    table = TableBuilder(root, fields)
    adds = []
    for n, (i, f, amt, s) in enumerate([(1, 1.1, "1.00", "01"), (5, 0.25, "1.01", " 7")]):
        row = {"id": n, "i": i, "b": i, "f": float(np.float32(f)), "amt": Decimal(amt), "s": s}
        add = table.add([row])
        add["add"]["stats"] = stats_json(table.schema["fields"], [row])
        adds.append(add)
    table.commit(*adds)
    return str(root)


@pytest.mark.parametrize(
    "predicate",
    ["i < 1.5", "i <> 1.5", "b < 15e-1", "1.5 > i", "f > 1.1", "f <> 1.1", "amt < 1.005",
     "amt > 1.0099999", "s = 1", "s IN (1, 7)", "s BETWEEN 6 AND 8", "f > '1.1'",
     "amt <> '1.005'"],
)  # fmt: skip
def test_a_literal_of_another_type_than_its_column_skips_no_matching_file(
    spark: SparkSession, typed_files: str, predicate: str
) -> None:
    # Spark widens the column to the literal's type (1 < 1.5; a float to a double; the text
    # '01' to the number 1); delta-rs casts the literal to the column's (1.5 to 1, 1.1 to a
    # float, 1 to the text '1') and skipped the very file holding the row.
    expected = delta.read(spark, typed_files).where(predicate).collect()

    assert expected  # a predicate no row matches proves nothing
    assert sorted(delta.read(spark, typed_files, filter=predicate).collect()) == sorted(expected)


@pytest.mark.parametrize(
    ("predicate", "files"),
    [("i < 2", 1), ("i > 1.0", 1), ("f < 0.5", 1), ("amt >= 1.01", 1), ("s = '01' AND i < 2", 1),
     ("s = '01' AND amt < 1.005", 2), ("s = '01' OR id = 1", 2)],
)  # fmt: skip
def test_literals_every_engine_reads_alike_still_skip(
    typed_files: str, predicate: str, files: int
) -> None:
    assert len(_read.plan(typed_files, predicate=predicate).files) == files


@pytest.mark.parametrize("predicate", ["s = '0' '1'", "s = '0'\n'1'", 's IN ("0" "1")'])
def test_adjacent_string_literals_skip_no_matching_file(
    spark: SparkSession, typed_files: str, predicate: str
) -> None:
    # Spark joins them into one ('01'); delta-rs did not, and skipped the file holding '01'.
    assert [row.id for row in delta.read(spark, typed_files, filter=predicate).collect()] == [0]
