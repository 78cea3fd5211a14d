"""Run outcomes and backfill reports: one status vocabulary, a reason apart from an error."""

from __future__ import annotations

from datetime import date

import pytest

from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.runners import BackfillReport, RunOutcome

DAY = date(2024, 1, 1)


def outcome(status: str, **fields: object) -> RunOutcome:
    return RunOutcome(logical_date=DAY, status=status, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "missing"),
    [
        ("failed", "error"),
        ("cancelled", "error"),
        ("already_done", "reason"),
        ("not_run", "reason"),
    ],
)
def test_an_outcome_that_did_not_run_now_says_why_in_its_field(status: str, missing: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        outcome(status)

    assert caught.value.argument == missing
    assert status in caught.value.problem


@pytest.mark.parametrize("word", ["skipped", "running", "committed"])
def test_an_outcome_status_outside_its_words_is_refused(word: str) -> None:
    with pytest.raises(UnknownValueError) as caught:
        outcome(word, reason="x", error="x")

    assert caught.value.value_received == word
    assert "already_done" in caught.value.valid_values


def test_an_outcome_is_built_with_keywords_only() -> None:
    with pytest.raises(TypeError):
        RunOutcome(DAY, "success")  # type: ignore[misc]


def test_a_report_is_ok_when_every_date_is_done_now_or_before() -> None:
    done = [outcome("success", report={"rows_written": 3}), outcome("already_done", reason="r")]
    ok = BackfillReport(job="j", runs=tuple(done), max_active_runs=1)
    refused = BackfillReport(
        job="j", runs=(*done, outcome("not_run", reason="previous failed")), max_active_runs=1
    )

    assert ok.ok
    assert ok.as_dict()["status"] == "success"
    assert not refused.ok
    assert refused.as_dict()["status"] == "failed"
    assert (refused.count("already_done"), refused.count("not_run")) == (1, 1)


def test_the_table_shows_an_error_or_a_reason_and_the_dict_keeps_them_apart() -> None:
    runs = (
        outcome("already_done", reason="already succeeded (run r1, attempt 1)"),
        outcome("failed", error="ValueError: no input"),
    )
    report = BackfillReport(job="j", runs=runs, max_active_runs=1)

    header, done, failed = report.table().splitlines()
    assert header.split() == ["date", "status", "seconds", "rows", "why"]
    assert done.split()[:2] == ["2024-01-01", "already_done"]
    assert done.endswith("already succeeded (run r1, attempt 1)")
    assert failed.endswith("ValueError: no input")
    first, second = report.as_dict()["runs"]
    assert ("reason" in first, "error" in first) == (True, False)
    assert ("reason" in second, "error" in second) == (False, True)
