"""Logical dates: parsing, the days of a range, and Airflow's `{ds}` macros in job arguments."""

from __future__ import annotations

from datetime import date

import pytest

from spark_flow.errors import InvalidArgumentError
from spark_flow.runners import daily, expand, parse_date


def test_a_range_holds_both_ends_and_a_reversed_one_is_refused() -> None:
    assert daily(date(2024, 2, 28), date(2024, 3, 1)) == [
        date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1),
    ]  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="after end"):
        daily(date(2024, 1, 5), date(2024, 1, 1))


def test_a_date_that_is_not_iso_is_refused_naming_what_was_given() -> None:
    assert parse_date("2024-01-31") == date(2024, 1, 31)
    with pytest.raises(InvalidArgumentError, match="'2024-13-01' is not a date") as caught:
        parse_date("2024-13-01", "start")
    assert caught.value.argument == "start"


def test_macros_are_substituted_and_other_braces_kept() -> None:
    argv = ["--input", "data/{ds}", "--batch-id", "{ds_nodash}", "--conf", '{"a": 1}']

    assert expand(argv, date(2024, 1, 6)) == [
        "--input", "data/2024-01-06", "--batch-id", "20240106", "--conf", '{"a": 1}',
    ]  # fmt: skip
