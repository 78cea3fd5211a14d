"""Types read right: widened columns, decimals, every Parquet timestamp encoding, timestamp_ntz.

Files written before a type widening keep their narrower Parquet type; they read as the
table's type. Timestamps stored as INT96, millis or micros read the same instant.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from _delta_tables import TableBuilder
from pyspark.sql import SparkSession
from test_delta_read_mapping import assert_reads_like_deltalake, both_readers, spark_rows

NARROW = [("b", "byte"), ("s", "short"), ("i", "integer"), ("f", "float"), ("dec", "decimal(5,2)")]
WIDE = {"b": "short", "s": "integer", "i": "long", "f": "double", "dec": "decimal(12,4)"}


def test_files_written_before_a_type_widening_read_as_the_table_type(
    spark: SparkSession, tmp_path: Path
) -> None:
    table = TableBuilder(tmp_path, NARROW, reader_features=("typeWidening",))
    old = {"b": -7, "s": 300, "i": 2**31 - 1, "f": 1.5, "dec": Decimal("123.45")}
    table.commit(table.add([old, {}]))
    for column, wider in WIDE.items():
        table.widen(column, wider)
    new = {"b": 2**15 - 1, "s": 2**31 - 1, "i": 2**40, "f": 1e300, "dec": Decimal("12345678.1234")}
    table.commit(table.add([new]))

    # deltalake's own reader refuses typeWidening tables: the expected rows are the values.
    nulls = dict.fromkeys(WIDE)
    expected = sorted([old, nulls, new], key=repr)
    for frame in both_readers(spark, tmp_path):
        assert sorted(spark_rows(frame), key=repr) == expected
        assert [f.dataType.simpleString() for f in frame.schema.fields] == [
            "smallint", "int", "bigint", "double", "decimal(12,4)"
        ]  # fmt: skip
        assert sorted(spark_rows(frame), key=lambda r: r["i"] or 0)[1]["i"] == 2**31 - 1


@pytest.mark.parametrize(
    "case",
    [
        ("byte", -7, "decimal(5,1)", Decimal("-7.0")),  # 3 integer digits hold any byte
        ("short", 300, "decimal(7,2)", Decimal("300.00")),  # 5 hold any short
        ("integer", 2**31 - 1, "decimal(12,2)", Decimal("2147483647.00")),
        ("integer", 7, "double", 7.0),
        ("long", 2**40, "decimal(22,2)", Decimal("1099511627776.00")),
    ],
)
def test_integers_widened_to_decimals_and_doubles(
    spark: SparkSession, tmp_path: Path, case: tuple[str, int, str, object]
) -> None:
    # Spark's Parquet reader reads an INT32 column as a decimal of 10 integer digits or more
    # only; narrower ones go to the Arrow reader instead of failing the scan.
    narrow, value, wide, expected = case
    table = TableBuilder(tmp_path, [("v", narrow)], reader_features=("typeWidening",))
    table.commit(table.add([{"v": value}]))
    table.widen("v", wide)
    for frame in both_readers(spark, tmp_path):
        assert spark_rows(frame) == [{"v": expected}]
        assert frame.schema["v"].dataType.simpleString() == wide


DECIMALS = ["decimal(1,0)", "decimal(9,2)", "decimal(10,10)", "decimal(18,3)", "decimal(38,0)",
            "decimal(38,37)", "decimal(25,5)"]  # fmt: skip


def _nines(data_type: str) -> Decimal:
    """The largest value of `decimal(p,s)`."""
    precision, scale = (int(n) for n in data_type[len("decimal(") : -1].split(","))
    return Decimal("9" * (precision - scale) + ("." + "9" * scale if scale else ""))


@pytest.mark.parametrize("as_integer", [False, True], ids=["fixed-bytes", "int32-int64"])
def test_decimals_of_every_precision_and_scale(
    spark: SparkSession, tmp_path: Path, as_integer: bool
) -> None:
    fields = [(f"d{n}", t) for n, t in enumerate(DECIMALS)]
    table = TableBuilder(tmp_path, fields)
    # Built from text: Decimal arithmetic would round to the context's 28 digits.
    nines = {name: _nines(data_type) for name, data_type in fields}
    negative = {name: Decimal("-" + str(value)) for name, value in nines.items()}
    table.commit(table.add([nines, negative, {}], store_decimal_as_integer=as_integer))

    assert_reads_like_deltalake(spark, tmp_path)


@pytest.mark.parametrize(
    "encoding",
    [
        {"use_deprecated_int96_timestamps": True},
        {"coerce_timestamps": "ms", "allow_truncated_timestamps": True},
        {"coerce_timestamps": "us"},
    ],
    ids=["int96", "millis", "micros"],
)
def test_timestamps_of_every_parquet_encoding_and_timestamp_ntz(
    spark: SparkSession, tmp_path: Path, encoding: dict
) -> None:
    table = TableBuilder(
        tmp_path, [("ts", "timestamp"), ("ntz", "timestamp_ntz")],
        reader_features=("timestampNtz",),
    )  # fmt: skip
    instant = dt.datetime(2024, 3, 10, 1, 59, 59, 123000, tzinfo=dt.timezone.utc)
    local = dt.datetime(1900, 1, 1, 23, 0, 0, 456000)
    table.commit(table.add([{"ts": instant, "ntz": local}, {}], **encoding))

    assert_reads_like_deltalake(spark, tmp_path)
    for frame in both_readers(spark, tmp_path):
        assert [f.dataType.simpleString() for f in frame.schema.fields] == [
            "timestamp", "timestamp_ntz"
        ]  # fmt: skip


def test_variant_columns_read_as_spark_variants(spark: SparkSession, tmp_path: Path) -> None:
    # The file as Spark writes a variant: struct<value, metadata> with the variant annotation.
    spark.conf.set("spark.sql.variant.writeShredding.enabled", "false")  # variantType, unshredded
    try:
        written = spark.sql(
            """SELECT 1L AS id, parse_json('{"a": 1, "b": [1, 2]}') AS v
               UNION ALL SELECT 2L, NULL"""
        )
        written.coalesce(1).write.parquet(str(tmp_path / "data"))
    finally:
        spark.conf.unset("spark.sql.variant.writeShredding.enabled")
    table = TableBuilder(tmp_path, [("id", "long"), ("v", "variant")],
                         reader_features=("variantType",))  # fmt: skip
    file = next((tmp_path / "data").glob("*.parquet"))
    add = {"path": file.relative_to(tmp_path).as_posix(), "partitionValues": {},
           "size": file.stat().st_size, "modificationTime": 0, "dataChange": True}  # fmt: skip
    table.commit({"add": add})

    for frame in both_readers(spark, tmp_path):
        assert frame.schema["v"].dataType.simpleString() == "variant"
        rows = frame.selectExpr("id", "to_json(v) AS v").orderBy("id").collect()
        assert [tuple(r) for r in rows] == [(1, '{"a":1,"b":[1,2]}'), (2, None)]


def test_int96_timestamps_outside_the_nanosecond_range(spark: SparkSession, tmp_path: Path) -> None:
    # INT96 read as nanoseconds (Arrow's default) overflows before 1677 and after 2262.
    table = TableBuilder(
        tmp_path, [("ts", "timestamp"), ("ntz", "timestamp_ntz")],
        reader_features=("timestampNtz",),
    )  # fmt: skip
    moments = [dt.datetime(1, 1, 1, 0, 0, 1), dt.datetime(1600, 5, 6, 7, 8, 9, 123456),
               dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]  # fmt: skip
    written = [{"ts": m.replace(tzinfo=dt.timezone.utc), "ntz": m} for m in moments]
    table.commit(table.add(written, use_deprecated_int96_timestamps=True))

    for frame in both_readers(spark, tmp_path):
        assert spark_rows(frame) == sorted(written, key=repr)
