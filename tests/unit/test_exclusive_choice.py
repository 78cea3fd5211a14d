"""Exclusive Choice: routers decide from a parameter, a date or a schema; one branch runs."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from enum import Enum

import pytest
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.fan_out import (
    ExclusiveChoice,
    Route,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)

MIGRATION = date(2024, 1, 1)
UTC = timezone.utc
LEGACY = StructType([StructField("type", StringType()), StructField("full_name", StringType())])
CURRENT = StructType([*LEGACY.fields, StructField("version", StringType())])


@pytest.mark.parametrize(
    ("run_date", "branch"),
    [
        (date(2023, 12, 31), "legacy"),  # the day before: a backfill keeps the old output
        (date(2024, 1, 1), "current"),  # the migration date itself takes the new branch
        (date(2024, 1, 2), "current"),
        (date(2019, 6, 1), "legacy"),
    ],
)
def test_route_by_date_keeps_dates_before_the_migration_on_the_legacy_branch(
    run_date: date, branch: str
) -> None:
    route = route_by_date(run_date, MIGRATION)

    assert route.branch == branch
    assert str(run_date) in route.reason
    assert "2024-01-01" in route.reason


def test_route_by_date_refuses_strings() -> None:
    with pytest.raises(InvalidArgumentError, match=r"date\.fromisoformat"):
        route_by_date("2024-01-01", MIGRATION)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schema", "kwargs", "branch", "fragment"),
    [
        (CURRENT, {"min_fields": 3}, "current", "has 3 fields (>= 3)"),
        (LEGACY, {"min_fields": 3}, "legacy", "has 2 fields, fewer than 3"),
        (CURRENT, {"required_columns": ["version"]}, "current", "has version"),
        (LEGACY, {"required_columns": ["version"]}, "legacy", "lacks version"),
        (
            StructType([*LEGACY.fields, StructField("id", LongType())]),
            {"min_fields": 3, "required_columns": ["version"]},
            "legacy",
            "lacks version",
        ),
    ],
)
def test_route_by_schema_reads_the_schema_only(
    schema: StructType, kwargs: dict[str, object], branch: str, fragment: str
) -> None:
    route = route_by_schema(schema, **kwargs)  # type: ignore[arg-type]

    assert route.branch == branch
    assert fragment in route.reason


def test_route_by_schema_needs_a_criterion() -> None:
    with pytest.raises(InvalidArgumentError, match="min_fields=3"):
        route_by_schema(CURRENT)


def test_exactly_one_branch_is_chosen_and_the_reason_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outputs = ExclusiveChoice("devices_output", {"legacy": "csv", "current": "delta"})

    with caplog.at_level(logging.INFO, logger="spark_flow.fan_out"):
        chosen = outputs.choose(route_by_date(date(2023, 5, 1), MIGRATION))

    assert (chosen.branch, chosen.value) == ("legacy", "csv")
    assert chosen.as_dict() == {
        "choice": "devices_output",
        "branch": "legacy",
        "reason": "run date 2023-05-01 is before the migration on 2024-01-01",
    }
    assert "exclusive choice devices_output: branch legacy, because run date" in caplog.text


def test_a_decision_naming_no_branch_takes_the_default_or_fails() -> None:
    strict = ExclusiveChoice("output", {"delta": 1, "csv": 2})
    lenient = ExclusiveChoice("output", {"delta": 1, "csv": 2}, default="delta")

    with pytest.raises(UnknownValueError) as caught:
        strict.choose(route_by_parameter("--output-type", "cvs"))
    chosen = lenient.choose(Route("orc", "--output-type='orc'"))

    assert caught.value.valid_values == ("delta", "csv")
    assert "Did you mean 'csv'?" in str(caught.value)
    assert (chosen.branch, chosen.value) == ("delta", 1)
    assert "no branch 'orc', took the default" in chosen.reason


@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (lambda: ExclusiveChoice("c", {}), InvalidArgumentError, "has none"),
        (lambda: ExclusiveChoice("c", {"a": 1}, default="b"), UnknownValueError, "default='b'"),
        (lambda: ExclusiveChoice("c", {"a b": 1}), InvalidArgumentError, "not a usable name"),
    ],
)
def test_a_choice_is_checked_when_it_is_defined(build, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        build()


def test_route_by_parameter_names_the_parameter() -> None:
    assert route_by_parameter("--output-type", "csv") == Route("csv", "--output-type='csv'")


def test_route_by_schema_counts_the_data_fields_not_sparks_corrupt_record_column() -> None:
    # One malformed line in a legacy file, read with an inferred schema (the chapter's
    # Example 6-20): Spark adds `_corrupt_record`, a third field that holds no data. Counted,
    # it sent the legacy rows to the new output.
    inferred = StructType([*LEGACY.fields, StructField("_corrupt_record", StringType())])

    route = route_by_schema(inferred, min_fields=3)

    assert route.branch == "legacy"
    assert "has 2 fields" in route.reason


def test_route_by_schema_finds_required_columns_in_any_case_as_spark_resolves_them() -> None:
    shouted = StructType([StructField(f.name.upper(), f.dataType) for f in CURRENT.fields])

    assert route_by_schema(shouted, required_columns=["version"]).branch == "current"


@pytest.mark.parametrize(
    ("run_date", "migration_date", "branch"),
    [
        # Example 6-17 (visits_converter DAG): Airflow's execution_date, a UTC datetime,
        # against a migration datetime.
        (datetime(2024, 2, 3, tzinfo=UTC), datetime(2024, 2, 3, tzinfo=UTC), "current"),
        (datetime(2024, 2, 2, tzinfo=UTC), datetime(2024, 2, 3, tzinfo=UTC), "legacy"),
        # The execution date against a plain migration date: its midnight, in UTC.
        (datetime(2024, 2, 3, tzinfo=UTC), date(2024, 2, 3), "current"),
        (datetime(2024, 2, 2, 23, 59, tzinfo=UTC), date(2024, 2, 3), "legacy"),
        (date(2024, 2, 3), datetime(2024, 2, 3, 12, 0), "legacy"),
        (date(2024, 2, 4), datetime(2024, 2, 3, 12, 0), "current"),
    ],
)
def test_route_by_date_takes_airflows_execution_date_a_datetime(
    run_date: date, migration_date: date, branch: str
) -> None:
    assert route_by_date(run_date, migration_date).branch == branch


def test_route_by_date_refuses_an_aware_and_a_naive_datetime_by_name() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        route_by_date(datetime(2024, 2, 3, tzinfo=UTC), datetime(2024, 2, 3))

    assert caught.value.argument == "migration_date"
    assert "time zone" in str(caught.value)


def test_route_by_parameter_routes_a_str_enum_by_its_value() -> None:
    # Example 6-18 parses --output_type with type=OutputType, a str enum.
    class OutputType(str, Enum):
        delta_lake = "delta"
        csv = "csv"

    route = route_by_parameter("--output_type", OutputType.csv)
    chosen = ExclusiveChoice("output", {"delta": 1, "csv": 2}).choose(route)

    assert route == Route("csv", "--output_type='csv'")
    assert type(chosen.branch) is str
    assert chosen.as_dict()["branch"] == "csv"
