"""Validation: named rules, malformed records, the quarantine and the counts on the writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.testing import count_spark_jobs
from spark_flow.validation import (
    CORRUPT_RECORD,
    MALFORMED,
    Accounting,
    Rule,
    Validation,
    permissive,
    quarantine_path,
)

SCHEMA = "type STRING, full_name STRING, version STRING"
RULES = Validation(
    [Rule("type_too_short", "length(type) > 3"), Rule("no_name", "full_name IS NOT NULL")]
)
VALID = {"type": "galaxy", "full_name": "galaxy s", "version": "1.0"}
LINES = [
    json.dumps(VALID),
    json.dumps({"type": "tv", "full_name": "a tv", "version": "2.1"}),  # too short
    json.dumps({"type": "x", "full_name": None, "version": "2.1"}),  # both: the first rule wins
    json.dumps({"type": "pixel", "version": "3.5"}),  # no name
    "this is not json",
    '{"type": "nokia", "full_na',  # truncated
]


@pytest.fixture
def devices(spark: SparkSession, tmp_path: Path) -> DataFrame:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "devices.json").write_text("\n".join(LINES) + "\n")
    return spark.read.schema(permissive(SCHEMA)).json(str(folder))


def reasons_of(df: DataFrame) -> list[tuple[str, str]]:
    return sorted((r["reason"], r["raw"]) for r in df.collect())


def test_each_row_is_rejected_for_its_first_failed_rule_and_keeps_its_raw_line(
    devices: DataFrame,
) -> None:
    rejected = reasons_of(devices.transform(RULES.rejected))

    assert [reason for reason, _ in rejected] == [
        MALFORMED, MALFORMED, "no_name", "type_too_short", "type_too_short"
    ]  # fmt: skip
    raws = {raw for reason, raw in rejected if reason == MALFORMED}
    assert raws == {"this is not json", '{"type": "nokia", "full_na'}
    assert json.loads(rejected[2][1]) == {"type": "pixel", "version": "3.5"}


def test_valid_rows_lose_the_columns_classification_adds(devices: DataFrame) -> None:
    valid = devices.transform(RULES.valid)

    assert valid.columns == ["type", "full_name", "version"]
    assert [r.asDict() for r in valid.collect()] == [VALID]


def test_column_rules_and_no_malformed_reason_without_a_corrupt_record_column(
    spark: SparkSession,
) -> None:
    df = spark.createDataFrame([("tv", "n", "1"), ("pixel", None, "2")], SCHEMA)
    rules = Validation(
        [Rule("short", F.length("type") > 3), Rule("no_name", F.col("full_name").isNotNull())]
    )

    assert rules.reasons(df) == ("short", "no_name")
    assert reasons_of(rules.rejected(df)) == [
        ("no_name", '{"type":"pixel","version":"2"}'),
        ("short", '{"type":"tv","full_name":"n","version":"1"}'),
    ]


def test_write_counts_exactly_and_a_rerun_duplicates_nothing(
    devices: DataFrame, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")

    first = RULES.write(devices, out, app_id="load.1", txn_version=1)
    rerun = RULES.write(devices, out, app_id="load.1", txn_version=1)

    assert first.accounting == Accounting(
        6, {"output": 1}, {MALFORMED: 2, "type_too_short": 2, "no_name": 1}
    )
    assert first.accounting.balanced
    assert first.quarantine_path == quarantine_path(out)
    spark = devices.sparkSession
    assert delta.read(spark, out).count() == 1
    quarantined = delta.read(spark, first.quarantine_path)
    assert reasons_of(quarantined) == reasons_of(devices.transform(RULES.rejected))
    assert not rerun.output.committed
    assert not rerun.quarantine.committed
    assert rerun.accounting.rows_read == 0
    assert "already committed" in (rerun.accounting.note or "")
    assert delta.read(spark, out).count() == 1
    assert quarantined.count() == 5


# No transform: one routed job writes both tables; a transform: two writes over a cache.
@pytest.mark.parametrize("transform", [None, lambda d: d], ids=["routed", "cached"])
def test_a_rerun_after_a_crash_with_only_the_quarantine_committed_writes_the_output(
    devices: DataFrame, tmp_path: Path, transform: Callable[[DataFrame], DataFrame] | None
) -> None:
    out = str(tmp_path / "out")
    delta.write(RULES.rejected(devices), quarantine_path(out), app_id="load.1", txn_version=1)

    rerun = RULES.write(devices, out, app_id="load.1", txn_version=1, transform=transform)

    assert not rerun.quarantine.committed
    assert rerun.output.committed
    assert rerun.accounting == Accounting(
        6, {"output": 1}, {MALFORMED: 2, "type_too_short": 2, "no_name": 1}
    )
    assert delta.read(devices.sparkSession, quarantine_path(out)).count() == 5


# The routed write commits both tables at once, so a crash may leave either one committed.
@pytest.mark.parametrize("transform", [None, lambda d: d], ids=["routed", "cached"])
def test_a_rerun_after_a_crash_with_only_the_output_committed_writes_the_quarantine(
    devices: DataFrame, tmp_path: Path, transform: Callable[[DataFrame], DataFrame] | None
) -> None:
    out = str(tmp_path / "out")
    delta.write(RULES.valid(devices), out, app_id="load.1", txn_version=1)

    rerun = RULES.write(devices, out, app_id="load.1", txn_version=1, transform=transform)
    again = RULES.write(devices, out, app_id="load.1", txn_version=1, transform=transform)

    assert rerun.quarantine.committed
    assert not rerun.output.committed
    assert rerun.accounting.rows_read == 6
    assert rerun.accounting.rows_written == {"output": 0}
    assert rerun.accounting.rows_rejected == {MALFORMED: 2, "type_too_short": 2, "no_name": 1}
    assert "already held this batch: output" in (rerun.accounting.note or "")
    assert [again.quarantine.committed, again.output.committed] == [False, False]
    spark = devices.sparkSession
    assert delta.read(spark, out).count() == 1
    quarantined = delta.read(spark, quarantine_path(out))
    assert reasons_of(quarantined) == reasons_of(devices.transform(RULES.rejected))


def test_one_spark_job_writes_both_tables_each_with_its_own_columns(
    devices: DataFrame, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")

    with count_spark_jobs(devices.sparkSession) as jobs:
        result = RULES.write(devices, out, app_id="load.1", txn_version=1)

    assert jobs.count == 1
    assert result.accounting.balanced
    assert file_columns(out, result.output.files) == {("type", "full_name", "version")}
    assert file_columns(result.quarantine_path, result.quarantine.files) == {("reason", "raw")}


def test_an_empty_input_is_accounted_as_nothing_read_and_nothing_missing(
    devices: DataFrame, tmp_path: Path
) -> None:
    result = RULES.write(devices.limit(0), str(tmp_path / "out"), app_id="a", txn_version=0)

    assert result.output.committed
    assert result.accounting == Accounting(
        0, {"output": 0}, {MALFORMED: 0, "type_too_short": 0, "no_name": 0}
    )


def file_columns(table: str, files: tuple[str, ...]) -> set[tuple[str, ...]]:
    assert files
    return {tuple(pq.read_schema(Path(table) / file).names) for file in files}


def test_a_classify_step_before_write_is_not_repeated(devices: DataFrame, tmp_path: Path) -> None:
    classified = devices.transform(RULES.classify).withColumn("full_name", F.upper("full_name"))

    result = RULES.write(classified, str(tmp_path / "out"), app_id="a", txn_version=0)

    assert result.accounting.rows_written == {"output": 1}
    (row,) = delta.read(devices.sparkSession, str(tmp_path / "out")).collect()
    assert row["full_name"] == "GALAXY S"


def test_classify_refuses_columns_it_would_overwrite(spark: SparkSession) -> None:
    df = spark.createDataFrame([("a", "b")], "type STRING, reason STRING")

    with pytest.raises(InvalidArgumentError, match="already has the column"):
        Validation([Rule("r", "true")]).classify(df)


def test_permissive_adds_the_corrupt_record_column_once() -> None:
    schema = permissive(SCHEMA)

    assert schema.fieldNames() == ["type", "full_name", "version", CORRUPT_RECORD]
    assert permissive(schema) == schema


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Rule("bad name", "true"), "not a usable name"),
        (lambda: Rule(MALFORMED, "true"), "rows Spark could not parse"),
        (lambda: Rule("r", ""), "Pass a SQL expression"),
        (lambda: Rule("r", 3), "Pass a SQL expression"),  # type: ignore[arg-type]
        (lambda: Validation([Rule("r", "true"), Rule("r", "false")]), "more than once"),
        (lambda: Validation(["length(type) > 3"]), "expected Rule objects"),  # type: ignore[list-item]
        (lambda: Accounting(3, {"out": 1}, {"r": 1}), "no note says why"),
        (lambda: Accounting(-1, {"out": 0}), "integers >= 0"),
    ],
)
def test_bad_definitions_fail_when_defined(build: object, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("transform", [None, lambda d: d], ids=["routed", "cached"])
def test_a_line_of_another_format_is_quarantined_as_text_any_reader_decodes(
    spark: SparkSession, tmp_path: Path, transform: Callable[[DataFrame], DataFrame] | None
) -> None:
    # A Parquet file among the JSON lines: its bytes are no UTF-8, and the quarantine's write
    # (its statistics, any reader) must still take them.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "devices.json").write_bytes(json.dumps(VALID).encode() + b"\nPAR1\xde\xff\x15\n")
    devices = spark.read.schema(permissive(SCHEMA)).json(str(folder))
    out = str(tmp_path / "out")

    result = RULES.write(devices, out, app_id="load.1", txn_version=1, transform=transform)

    assert result.accounting == Accounting(2, {"output": 1}, {MALFORMED: 1, "type_too_short": 0,
                                                              "no_name": 0})  # fmt: skip
    (held,) = delta.read(spark, result.quarantine_path).collect()
    assert (held["reason"], held["raw"]) == (MALFORMED, "PAR1\ufffd\ufffd\x15")
