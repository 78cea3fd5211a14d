"""The `FanIn` spec: settle the parents, weigh Airflow's trigger rule, combine what arrived.

`FanIn` is a frozen definition, checked when it is created; `run` settles its parents (a
`FanInParents` strategy, see `_parents`), weighs the trigger rule over their outcomes and unions
the frames that arrived. `all_success` is the Aligned Fan-In; the other rules (and
`min_completeness`) the Unaligned one, whose report says how complete it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from typing import Any, Literal, get_args

from pyspark.sql import DataFrame

from spark_flow._common import check_max_parallel, check_name
from spark_flow.errors import InvalidArgumentError, TriggerRuleError, UnknownValueError
from spark_flow.fan_in._combine import union_by_name
from spark_flow.fan_in._parents import FanInParents, ParentOutcome, ParentStatus
from spark_flow.fan_in._partitions import add_completeness_columns

log = logging.getLogger(__name__)

TriggerRule = Literal[
    "all_success",
    "all_done",
    "all_done_min_one_success",
    "all_failed",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
]
TRIGGER_RULES: tuple[TriggerRule, ...] = get_args(TriggerRule)


def trigger_rule_met(rule: TriggerRule, statuses: Sequence[ParentStatus]) -> bool:
    """Airflow's trigger rules over finished parents, read literally (zero parents included).

    Every parent has settled when the rule is weighed, so `all_done` always holds and
    `all_done_min_one_success` asks what `one_success` asks; Airflow's `one_*` rules differ only
    in firing before the other parents finish. With zero parents an `all_*` or `none_*` rule
    holds and a rule needing one parent (`one_*`, `..._min_one_success`) does not.

    Example:
        >>> trigger_rule_met("none_failed_min_one_success", ["success", "skipped"])
        True
    """
    if rule not in TRIGGER_RULES:
        raise UnknownValueError("trigger_rule", rule, TRIGGER_RULES)
    success = statuses.count("success")
    failed = statuses.count("failed")
    skipped = statuses.count("skipped")
    total = len(statuses)
    return {
        "all_success": success == total,
        "all_done": True,
        "all_done_min_one_success": success >= 1,
        "all_failed": failed == total,
        "all_skipped": skipped == total,
        "one_success": success >= 1,
        "one_failed": failed >= 1,
        "one_done": success + failed >= 1,
        "none_failed": failed == 0,
        "none_failed_min_one_success": failed == 0 and success >= 1,
        "none_skipped": skipped == 0,
        "always": True,
    }[rule]


@dataclass(frozen=True)
class FanInReport:
    """What a fan-in run found: each parent's outcome, whether the child runs, and its input.

    Attributes:
        name: the fan-in's name.
        rule: the trigger rule that was weighed.
        outcomes: one per parent, in the parents' order.
        triggered: the rule (and `min_completeness`) allowed the child to run.
        data: when triggered, the union of the successful parents with `completeness` /
            `is_approximate` columns; None when no parent succeeded (e.g. under `all_skipped`)
            or when not triggered.
        fallback: what `on_not_triggered` returned, when it ran.
    """

    name: str
    rule: TriggerRule
    outcomes: tuple[ParentOutcome, ...]
    triggered: bool
    data: DataFrame | None = None
    fallback: Any = None

    @property
    def completeness(self) -> float:
        """The fraction of parents that succeeded."""
        succeeded = sum(o.status == "success" for o in self.outcomes)
        return succeeded / len(self.outcomes) if self.outcomes else 0.0

    @property
    def missing(self) -> tuple[str, ...]:
        """The parents that did not succeed (failed, missing or skipped)."""
        return tuple(o.name for o in self.outcomes if o.status != "success")


@dataclass(frozen=True)
class FanIn:
    """Combine parents into one input when a trigger rule allows it; checked when defined.

    Attributes:
        name: the fan-in's name, in logs and errors.
        parents: `TaskParents` (DataFrames or tasks, run concurrently) or `PartitionParents`
            (the partitions of one dataset, read in one scan); at least one parent.
        trigger_rule: when the child runs, with Airflow's meaning; `all_success` is the
            Aligned Fan-In.
        min_completeness: also require this fraction (0 to 1) of the parents to have succeeded.
        max_parallel: tasks running at once (default: all).
        on_not_triggered: called with the report when the rule says the child must not run (a
            fallback or alerting task); without it, `run` raises `TriggerRuleError`.
        allow_missing_columns: passed to `union_by_name`.
        source_column: passed to `union_by_name`: each row's parent name.

    Raises:
        InvalidArgumentError: a bad name, no parents, or an option out of its range.
        UnknownValueError: a trigger rule Airflow does not have.

    Example:
        >>> hours = FanIn("visits", TaskParents({f"{h:02d}": load_hour(h) for h in range(24)}),
        ...               trigger_rule="all_done", min_completeness=0.5)
        >>> cube = build_cube(hours.run().data)
    """

    name: str
    parents: FanInParents
    _: KW_ONLY
    trigger_rule: TriggerRule = "all_success"
    min_completeness: float | None = None
    max_parallel: int | None = None
    on_not_triggered: Callable[[FanInReport], Any] | None = None
    allow_missing_columns: bool = False
    source_column: str | None = None

    def __post_init__(self) -> None:
        check_name("fan-in name", self.name)
        if not callable(getattr(self.parents, "settle", None)):
            raise InvalidArgumentError(
                "parents",
                f"fan-in {self.name!r} expected TaskParents, PartitionParents or another "
                f"FanInParents (names and settle()), got a {type(self.parents).__name__}",
                "Wrap a mapping of DataFrames or tasks in TaskParents({...}); for partitions of "
                "one dataset pass PartitionParents(listing, read).",
            )
        if not self.parents.names:
            raise InvalidArgumentError(
                "parents", f"fan-in {self.name!r} has none", "Pass at least one parent."
            )
        if self.trigger_rule not in TRIGGER_RULES:
            raise UnknownValueError("trigger_rule", self.trigger_rule, TRIGGER_RULES)
        fraction = self.min_completeness
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not 0.0 <= fraction <= 1.0
        ):
            raise InvalidArgumentError(
                "min_completeness",
                f"expected a fraction between 0 and 1, got {fraction!r}",
                "Pass e.g. 0.5 for at least half of the parents.",
            )
        check_max_parallel(self.max_parallel, "parent tasks")
        if self.on_not_triggered is not None and not callable(self.on_not_triggered):
            raise InvalidArgumentError(
                "on_not_triggered",
                f"fan-in {self.name!r} got {self.on_not_triggered!r}, which is not callable",
                "Pass a function taking the FanInReport, or None to raise TriggerRuleError.",
            )
        if self.source_column is not None and (
            not isinstance(self.source_column, str) or not self.source_column
        ):
            raise InvalidArgumentError(
                "source_column",
                f"fan-in {self.name!r} got {self.source_column!r}",
                "Pass the name of the column to add, or None for no such column.",
            )

    def run(self) -> FanInReport:
        """Settle every parent, apply the rule, and return the combined input or the fallback.

        Raises:
            TriggerRuleError: the rule says the child must not run and there is no fallback;
                it names the parents that failed, are missing or were skipped, and why.
        """
        settled = self.parents.settle(self.name, max_parallel=self.max_parallel)
        report = FanInReport(self.name, self.trigger_rule, settled.outcomes, triggered=False)
        statuses = [o.status for o in settled.outcomes]
        completeness = report.completeness
        triggered = trigger_rule_met(self.trigger_rule, statuses) and (
            self.min_completeness is None or completeness >= self.min_completeness
        )
        log.info(
            "fan-in %s: %d/%d parents succeeded (%.0f%%), rule %s%s: %s",
            self.name,
            statuses.count("success"),
            len(statuses),
            100 * completeness,
            self.trigger_rule,
            "" if self.min_completeness is None else f" + min_completeness {self.min_completeness}",
            "child runs" if triggered else "child does not run",
        )
        if not triggered:
            if self.on_not_triggered is None:
                raise TriggerRuleError(
                    self.name,
                    self.trigger_rule,
                    self.min_completeness,
                    tuple(
                        (o.name, o.status, o.detail or "")
                        for o in settled.outcomes
                        if o.status != "success"
                    ),
                    completeness,
                )
            return replace(report, fallback=self.on_not_triggered(report))
        data = None
        if settled.frames:
            combined = union_by_name(
                settled.frames,
                allow_missing_columns=self.allow_missing_columns,
                source_column=self.source_column,
            )
            data = add_completeness_columns(combined, completeness)
        return replace(report, triggered=True, data=data)
