"""Delta file statistics from Parquet footers: what is written, what is left out, and why."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from spark_flow.delta._stats import file_stats, indexed_columns
from spark_flow.errors import InvalidArgumentError


def _stats(
    tmp_path: Path,
    table: pa.Table,
    schema: StructType,
    *,
    partition_by: tuple[str, ...] = (),
    indexed: int | tuple[str, ...] = 32,
    **write_options: Any,
) -> dict[str, Any]:
    file = tmp_path / "part.parquet"
    pq.write_table(table, file, **write_options)
    text = file_stats(
        pq.read_metadata(file), schema, partition_by=partition_by, indexed_columns=indexed
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _fields(*pairs: tuple[str, Any]) -> StructType:
    return StructType([StructField(name, data_type) for name, data_type in pairs])


def test_numbers_strings_dates_and_decimals_get_min_max_and_null_counts(tmp_path: Path) -> None:
    table = pa.table({
        "id": pa.array([3, 1, None], pa.int64()),
        "name": ["b", None, "a"],
        "day": [dt.date(2024, 1, 2), dt.date(2023, 12, 31), None],
        "price": pa.array([Decimal("1.50"), Decimal("-2.25"), None], pa.decimal128(10, 2)),
    })  # fmt: skip
    schema = _fields(
        ("id", LongType()), ("name", StringType()), ("day", DateType()),
        ("price", DecimalType(10, 2)),
    )  # fmt: skip
    text_stats = _stats(tmp_path, table, schema)
    assert text_stats == {
        "numRecords": 3,
        "minValues": {"id": 1, "name": "a", "day": "2023-12-31", "price": -2.25},
        "maxValues": {"id": 3, "name": "b", "day": "2024-01-02", "price": 1.5},
        "nullCount": {"id": 1, "name": 1, "day": 1, "price": 1},
    }


def test_decimals_keep_every_digit(tmp_path: Path) -> None:
    big = Decimal("12345678901234567890.123")
    table = pa.table({"amount": pa.array([big], pa.decimal128(30, 3))})
    file = tmp_path / "part.parquet"
    pq.write_table(table, file)
    text = file_stats(
        pq.read_metadata(file), _fields(("amount", DecimalType(30, 3))), partition_by=(),
        indexed_columns=32,
    )  # fmt: skip
    assert '"minValues":{"amount":12345678901234567890.123}' in text


def test_timestamps_are_millis_with_the_max_rounded_up(tmp_path: Path) -> None:
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    table = pa.table({
        "ts": pa.array([moment.replace(tzinfo=dt.timezone.utc)], pa.timestamp("us", tz="UTC")),
        "local": pa.array([moment], pa.timestamp("us")),
        "exact": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 123000)], pa.timestamp("us")),
    })  # fmt: skip
    schema = _fields(("ts", TimestampType()), ("local", TimestampNTZType()),
                     ("exact", TimestampNTZType()))  # fmt: skip
    stats = _stats(tmp_path, table, schema)
    assert stats["minValues"] == {
        "ts": "2024-01-02T03:04:05.123Z", "local": "2024-01-02T03:04:05.123",
        "exact": "2024-01-02T03:04:05.123",
    }  # fmt: skip
    assert stats["maxValues"] == {
        "ts": "2024-01-02T03:04:05.124Z", "local": "2024-01-02T03:04:05.124",
        "exact": "2024-01-02T03:04:05.123",
    }  # fmt: skip


def test_strings_are_cut_to_32_characters_and_the_max_stays_an_upper_bound(
    tmp_path: Path,
) -> None:
    long_low, long_high = "a" * 40, "z" * 32 + "\uffff\uffffb"
    table = pa.table({"s": [long_low, long_high], "t": ["é" * 33, "é" * 33]})
    stats = _stats(tmp_path, table, _fields(("s", StringType()), ("t", StringType())))
    assert stats["minValues"] == {"s": "a" * 32, "t": "é" * 32}
    # The cut character is kept while >= the tie-breaker U+FFFD, then the tie-breaker follows.
    assert stats["maxValues"] == {"s": "z" * 32 + "\uffff\uffff\ufffd", "t": "é" * 32 + "\ufffd"}
    assert stats["maxValues"]["s"] >= long_high
    assert stats["maxValues"]["t"] >= "é" * 33


def test_booleans_and_binary_get_null_counts_only(tmp_path: Path) -> None:
    table = pa.table({"flag": [True, None], "blob": [b"x", None]})
    stats = _stats(tmp_path, table, _fields(("flag", BooleanType()), ("blob", BinaryType())))
    assert stats == {"numRecords": 2, "nullCount": {"flag": 1, "blob": 1}}


def test_floats_from_writers_that_hide_nan_get_no_min_max(tmp_path: Path) -> None:
    # Arrow leaves NaN out of its footer's min/max; Spark orders NaN above every number.
    table = pa.table({"x": [1.0, float("nan")]})
    stats = _stats(tmp_path, table, _fields(("x", DoubleType())))
    assert stats == {"numRecords": 2, "nullCount": {"x": 0}}


def test_nested_struct_fields_are_nested_objects_arrays_and_maps_are_left_out(
    tmp_path: Path,
) -> None:
    table = pa.table({
        "device": [{"id": 7, "os": "ios"}, None],
        "tags": [["a"], None],
        "attrs": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int32())),
    })  # fmt: skip
    schema = _fields(
        ("device", _fields(("id", LongType()), ("os", StringType()))),
        ("tags", ArrayType(StringType())),
        ("attrs", MapType(StringType(), IntegerType())),
    )
    stats = _stats(tmp_path, table, schema)
    assert stats == {
        "numRecords": 2,
        "minValues": {"device": {"id": 7, "os": "ios"}},
        "maxValues": {"device": {"id": 7, "os": "ios"}},
        "nullCount": {"device": {"id": 1, "os": 1}},
    }


def test_partition_columns_are_left_out_and_not_counted(tmp_path: Path) -> None:
    table = pa.table({"a": [1], "b": [2], "c": [3]})
    schema = _fields(("day", StringType()), ("a", LongType()), ("b", LongType()),
                     ("c", LongType()))  # fmt: skip
    stats = _stats(tmp_path, table, schema, partition_by=("day",), indexed=2)
    assert stats["nullCount"] == {"a": 0, "b": 0}


def test_the_first_n_leaves_count_struct_fields_one_by_one(tmp_path: Path) -> None:
    table = pa.table({"s": [{"x": 1, "y": 2}], "z": [3]})
    schema = _fields(("s", _fields(("x", LongType()), ("y", LongType()))), ("z", LongType()))
    assert _stats(tmp_path, table, schema, indexed=1)["minValues"] == {"s": {"x": 1}}
    assert _stats(tmp_path, table, schema, indexed=-1)["minValues"] == {
        "s": {"x": 1, "y": 2}, "z": 3,
    }  # fmt: skip


def test_named_columns_pick_nested_fields_whatever_their_case(tmp_path: Path) -> None:
    table = pa.table({"s": [{"x": 1, "y": 2}], "z": [3], "w.v": [4]})
    schema = _fields(("s", _fields(("x", LongType()), ("y", LongType()))), ("z", LongType()),
                     ("w.v", LongType()))  # fmt: skip
    stats = _stats(tmp_path, table, schema, indexed=("S.y", "`w.v`"))
    assert stats["minValues"] == {"s": {"y": 2}, "w.v": 4}


def test_what_the_footer_does_not_say_is_left_out(tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2]})
    stats = _stats(tmp_path, table, _fields(("id", LongType())), write_statistics=False)
    assert stats == {"numRecords": 2}


def test_a_column_the_file_lacks_is_null_in_every_row(tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2]})
    stats = _stats(tmp_path, table, _fields(("id", LongType()), ("added", StringType())))
    assert stats["nullCount"] == {"id": 0, "added": 2}
    assert "added" not in stats["minValues"]


def test_row_groups_are_combined_and_all_null_ones_bound_nothing(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([5, 9, None, None, 2, 4], pa.int64())})
    stats = _stats(tmp_path, table, _fields(("id", LongType())), row_group_size=2)
    assert stats["minValues"] == {"id": 2}
    assert stats["maxValues"] == {"id": 9}
    assert stats["nullCount"] == {"id": 2}


def test_an_empty_file_has_zero_records_and_no_bounds(tmp_path: Path) -> None:
    table = pa.table({"id": pa.array([], pa.int64())})
    stats = _stats(tmp_path, table, _fields(("id", LongType())))
    assert stats["numRecords"] == 0
    assert "minValues" not in stats


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({}, 32),
        ({"delta.dataSkippingNumIndexedCols": "5"}, 5),
        ({"delta.dataSkippingNumIndexedCols": "-1"}, -1),
        ({"delta.dataSkippingStatsColumns": "a, b.c,`d.e`"}, ("a", "b.c", "`d.e`")),
        ({"delta.dataSkippingStatsColumns": "a", "delta.dataSkippingNumIndexedCols": "3"}, ("a",)),
    ],
)
def test_the_table_properties_choose_the_columns(
    configuration: dict[str, str], expected: object
) -> None:
    assert indexed_columns(configuration) == expected


@pytest.mark.parametrize("raw", ["many", "-2"])
def test_a_bad_column_count_property_is_refused(raw: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        indexed_columns({"delta.dataSkippingNumIndexedCols": raw})
    assert caught.value.argument == "delta.dataSkippingNumIndexedCols"
    assert "integer >= -1" in str(caught.value)
