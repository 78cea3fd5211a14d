"""Every report's statuses are words of `spark_flow.status`, and reports refuse other words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spark_flow.errors import UnknownValueError
from spark_flow.fan_out import BRANCH_STATUSES, BranchReport
from spark_flow.runners.reports import OUTCOME_STATUSES
from spark_flow.runners.state import RUN_STATUSES
from spark_flow.sequence import STEP_STATUSES, StepReport
from spark_flow.status import DONE, STATUSES


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (OUTCOME_STATUSES, {"success", "already_done", "failed", "cancelled", "not_run"}),
        (RUN_STATUSES, {"running", "success", "failed", "not_run"}),
        (STEP_STATUSES, {"success", "already_done"}),
        (BRANCH_STATUSES, {"success", "already_done", "failed", "cancelled"}),
    ],
    ids=["run outcome", "run record", "step", "branch"],
)
def test_each_report_uses_a_subset_of_the_one_vocabulary(
    words: tuple[str, ...], expected: set[str]
) -> None:
    assert set(words) == expected
    assert set(words) <= set(STATUSES)


def test_done_means_success_or_already_done_wherever_both_occur() -> None:
    assert {"success", "already_done"} <= set(STEP_STATUSES) & set(BRANCH_STATUSES)
    assert set(DONE) <= set(OUTCOME_STATUSES)


@pytest.mark.parametrize(
    ("make", "old_word"),
    [
        (lambda status: StepReport("s", status), "ran"),
        (lambda status: StepReport("s", status), "restored"),
        (lambda status: BranchReport("b", "out", status, 0.0), "committed"),
        (lambda status: BranchReport("b", "out", status, 0.0), "skipped"),
    ],
)
def test_the_old_words_are_refused(make: Callable[[str], object], old_word: str) -> None:
    with pytest.raises(UnknownValueError) as caught:
        make(old_word)

    assert caught.value.value_received == old_word
