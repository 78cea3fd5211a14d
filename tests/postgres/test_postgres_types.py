"""Every Spark type the postgres output accepts round-trips; the others are refused by name."""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from _pg import execute, query
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from spark_flow.errors import InvalidArgumentError
from spark_flow.outputs import output_writer
from spark_flow.postgres.local import LocalPostgres
from spark_flow.testing import count_spark_jobs

pytestmark = pytest.mark.postgres

# The README's type mapping table: Spark type -> the column a new table gets.
MAPPING = [
    ("flag", T.BooleanType(), "boolean"),
    ("tiny", T.ByteType(), "smallint"),
    ("small", T.ShortType(), "smallint"),
    ("medium", T.IntegerType(), "integer"),
    ("big", T.LongType(), "bigint"),
    ("single", T.FloatType(), "real"),
    ("double", T.DoubleType(), "double precision"),
    ("amount", T.DecimalType(38, 10), "numeric(38,10)"),
    ("label", T.StringType(), "text"),
    ("payload", T.BinaryType(), "bytea"),
    ("day", T.DateType(), "date"),
    ("at", T.TimestampType(), "timestamp with time zone"),
    ("local_at", T.TimestampNTZType(), "timestamp without time zone"),
    ("clock", T.TimeType(), "time without time zone"),
    ("tags", T.ArrayType(T.StringType()), "jsonb"),
    ("attrs", T.MapType(T.StringType(), T.LongType()), "jsonb"),
    ("point", T.StructType([T.StructField("x", T.DoubleType()),
                            T.StructField("y", T.DoubleType())]), "jsonb"),
]  # fmt: skip
SCHEMA = T.StructType([T.StructField(name, kind) for name, kind, _ in MAPPING])
UTC = timezone.utc

EXTREMES = (
    True, -128, -32768, -(2**31), -(2**63),
    3.4028234663852886e38, 1.7976931348623157e308,
    Decimal("-1234567890123456789012345678.0123456789"),
    'a,"quoted"\nline\\back\tslash ünïcödé €', bytes(range(256)),
    date(1, 1, 1), datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999),
    time(23, 59, 59, 999999),
    ["a", None, "c,d"], {"k": 1, "n": None}, {"x": 1.5, "y": None},
)  # fmt: skip
EDGES = (
    False, 127, 32767, 2**31 - 1, 2**63 - 1,
    float("nan"), float("-inf"),
    Decimal("0.0000000001"),
    "", b"",
    date(9999, 12, 31), datetime(2024, 2, 29, 12, 30, 1, 5, tzinfo=timezone(timedelta(hours=5))),
    datetime(1969, 12, 31, 23, 59, 59, 1), time(0, 0),
    [], {}, {"x": float("inf"), "y": -0.5},
)  # fmt: skip
NULLS = (None,) * len(MAPPING)


def same(column: str, read: Any, written: Any) -> bool:
    if isinstance(written, float) and math.isnan(written):
        return isinstance(read, float) and math.isnan(read)
    if column == "single" and written is not None:
        # psycopg reads a real through its shortest decimal text: compare the float32 bits.
        return struct.pack("f", read) == struct.pack("f", written)
    if isinstance(written, bytes):
        return bytes(read) == written
    return bool(read == written)


def test_every_accepted_type_round_trips_and_creates_its_documented_column(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    written = [EXTREMES, EDGES, NULLS]
    df = spark.createDataFrame(written, SCHEMA)

    result = output_writer("postgres").write(df, table, app_id="types", txn_version=1)

    assert result.rows_written == 3
    columns = query(
        postgres,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
        table,
    )
    assert columns == [(name, pg_type) for name, _, pg_type in MAPPING]
    read = {row[1]: row for row in query(postgres, f"SELECT * FROM {table}")}  # keyed by tiny
    # JSON has no infinity: to_json writes the string "Infinity", which jsonb keeps.
    as_json = (*EDGES[:-1], {"x": "Infinity", "y": -0.5})
    for expected in (EXTREMES, as_json, NULLS):
        got = read[expected[1]]
        mismatched = [
            (name, got[i], value)
            for i, (name, value) in enumerate(zip(SCHEMA.names, expected, strict=True))
            if not same(name, got[i], value)
        ]
        assert mismatched == [], f"row with tiny={expected[1]}"


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("interval '1' day AS wait", "wait (interval day)"),
        ("null AS nothing", "nothing (void)"),
        ("parse_json('{}') AS doc", "doc (variant)"),
    ],
)
def test_types_without_a_mapping_are_refused_by_name_before_any_spark_job(
    spark: SparkSession, postgres: LocalPostgres, table: str, expression: str, refused: str
) -> None:
    df = spark.sql(f"SELECT 1 AS id, {expression}")

    with count_spark_jobs(spark) as jobs, pytest.raises(InvalidArgumentError) as caught:
        output_writer("postgres").write(df, table, app_id="types", txn_version=1)

    assert refused in caught.value.problem
    assert "Cast or drop them" in caught.value.fix
    assert jobs.count == 0
    assert query(postgres, "SELECT to_regclass(%s)", table) == [(None,)]


def test_an_existing_table_may_hold_wider_or_unconstrained_types(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    execute(
        postgres,
        f"CREATE TABLE {table} (id bigserial PRIMARY KEY, n bigint, x double precision, "
        "s varchar(20), d numeric, j json, loaded_at timestamptz DEFAULT now())",
    )
    df = spark.sql("SELECT 1 AS n, cast(1.5 AS float) AS x, 'a' AS s, 2.5bd AS d, array(1) AS j")

    output_writer("postgres").write(df, table, app_id="wide", txn_version=1)

    assert query(postgres, f"SELECT id, n, x, s, d, j FROM {table}") == [
        (1, 1, 1.5, "a", Decimal("2.5"), [1])
    ]
