"""Airflow's trigger rules, read literally, against every mix of parent outcomes."""

from __future__ import annotations

import pickle
from typing import get_args

import pytest

from spark_flow.errors import TriggerRuleError, UnknownValueError
from spark_flow.fan_in import TriggerRule, trigger_rule_met

S, F, K = "success", "failed", "skipped"
MIXES = {
    "none": [],
    "all_success": [S, S, S],
    "all_failed": [F, F],
    "all_skipped": [K, K],
    "success_failed": [S, F],
    "success_skipped": [S, K],
    "failed_skipped": [F, K],
    "all_three": [S, F, K],
}
# rule -> the mixes (by name) under which the child runs
RUNS = {
    "all_success": {"none", "all_success"},
    "all_done": set(MIXES),
    "always": set(MIXES),
    "all_done_min_one_success": {"all_success", "success_failed", "success_skipped", "all_three"},
    "all_failed": {"none", "all_failed"},
    "all_skipped": {"none", "all_skipped"},
    "one_success": {"all_success", "success_failed", "success_skipped", "all_three"},
    "one_failed": {"all_failed", "success_failed", "failed_skipped", "all_three"},
    "one_done": set(MIXES) - {"none", "all_skipped"},
    "none_failed": {"none", "all_success", "all_skipped", "success_skipped"},
    "none_failed_min_one_success": {"all_success", "success_skipped"},
    "none_skipped": {"none", "all_success", "all_failed", "success_failed"},
}


def test_the_truth_table_covers_every_rule() -> None:
    assert set(RUNS) == set(get_args(TriggerRule))


@pytest.mark.parametrize("rule", sorted(RUNS))
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_trigger_rule_truth_table(rule: str, mix: str) -> None:
    assert trigger_rule_met(rule, MIXES[mix]) == (mix in RUNS[rule])


def test_an_unknown_rule_suggests_the_closest() -> None:
    with pytest.raises(UnknownValueError, match="Did you mean 'all_success'"):
        trigger_rule_met("all_sucess", [S])


def test_trigger_rule_error_names_the_parents_and_survives_pickling() -> None:
    error = TriggerRuleError(
        "visits", "all_success", None, (("hour=07", F, "missing: no data"),), 23 / 24
    )

    copy = pickle.loads(pickle.dumps(error))

    assert str(copy) == str(error)
    assert "all_success is not met at 96% completeness" in str(error)
    assert "hour=07 failed (missing: no data)" in str(error)
