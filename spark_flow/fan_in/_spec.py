"""The `FanIn` spec: settle the parents, weigh Airflow's trigger rule, combine what arrived.

`all_success` is the Aligned Fan-In; the other rules (and `min_completeness`) the Unaligned one,
whose result says how complete it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from pyspark.sql import DataFrame

from spark_flow._common import check_name, error_summary
from spark_flow.errors import (
    InvalidArgumentError,
    SparkFlowError,
    TriggerRuleError,
    UnknownValueError,
)
from spark_flow.fan_in._combine import union_by_name
from spark_flow.fan_in._partitions import PartitionListing, with_completeness

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
TRIGGER_RULES: tuple[str, ...] = get_args(TriggerRule)
ParentStatus = Literal["success", "failed", "skipped"]


class ParentSkipped(SparkFlowError):
    """Raised by a parent task that has nothing to contribute this time (status `skipped`)."""


@dataclass(frozen=True)
class ParentOutcome:
    """How one parent ended: success, failed (with the error) or skipped (with the reason)."""

    name: str
    status: ParentStatus
    detail: str | None = None


def trigger_rule_met(rule: str, statuses: Sequence[str]) -> bool:
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
class FanInResult:
    """The parents' outcomes, the completeness, and the combined data when the child runs.

    `data` is the union of the successful parents with `completeness` / `is_approximate`
    columns; None when no parent succeeded or the rule sent the flow to the fallback, whose
    return value is in `fallback`.
    """

    name: str
    rule: str
    outcomes: tuple[ParentOutcome, ...]
    triggered: bool
    data: DataFrame | None = None
    fallback: Any = None

    @property
    def completeness(self) -> float:
        succeeded = sum(o.status == "success" for o in self.outcomes)
        return succeeded / len(self.outcomes)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes if o.status != "success")


Parent = DataFrame | Callable[[], DataFrame]


@dataclass(frozen=True)
class PartitionParents:
    """Parents that are partitions of one dataset: a listing and how to read it in one scan."""

    listing: PartitionListing
    read: Callable[[PartitionListing], DataFrame]


class FanIn:
    """Combine parents into one input when a trigger rule allows it.

    Parents are DataFrames (present, so `success`) or tasks: callables returning a DataFrame,
    run concurrently (at most `max_parallel`), that may fail (`failed`) or raise
    `ParentSkipped` (`skipped`). Use `FanIn.from_partitions` for partitions of one dataset.

    Args:
        name: the fan-in's name, in logs and errors.
        parents: parent name -> DataFrame or task; at least one.
        trigger_rule: when the child runs; `all_success` is the Aligned Fan-In.
        min_completeness: also require this fraction of parents to have succeeded.
        max_parallel: tasks running at once (default: all).
        on_not_triggered: called with the result when the rule says the child must not run
            (a fallback or alerting task); without it, `TriggerRuleError` is raised.
        allow_missing_columns: passed to `union_by_name`.
        source_column: passed to `union_by_name`.

    Example:
        >>> hours = FanIn("visits", {f"{h:02d}": load_hour(h) for h in range(24)},
        ...               trigger_rule="all_done", min_completeness=0.5)
        >>> cube = build_cube(hours.run().data)
    """

    def __init__(
        self,
        name: str,
        parents: Mapping[str, Parent] | PartitionParents,
        *,
        trigger_rule: str = "all_success",
        min_completeness: float | None = None,
        max_parallel: int | None = None,
        on_not_triggered: Callable[[FanInResult], Any] | None = None,
        allow_missing_columns: bool = False,
        source_column: str | None = None,
    ) -> None:
        check_name("fan-in name", name)
        if not isinstance(parents, PartitionParents) and not parents:
            raise InvalidArgumentError(
                "parents", f"fan-in {name!r} has none", "Pass at least one parent."
            )
        if trigger_rule not in TRIGGER_RULES:
            raise UnknownValueError("trigger_rule", trigger_rule, TRIGGER_RULES)
        if min_completeness is not None and not 0.0 <= min_completeness <= 1.0:
            raise InvalidArgumentError(
                "min_completeness",
                f"expected a fraction between 0 and 1, got {min_completeness!r}",
                "Pass e.g. 0.5 for at least half of the parents.",
            )
        self.name = name
        self.parents = parents if isinstance(parents, PartitionParents) else dict(parents)
        self.trigger_rule = trigger_rule
        self.min_completeness = min_completeness
        self.max_parallel = max_parallel
        self.on_not_triggered = on_not_triggered
        self._union_options: dict[str, Any] = {
            "allow_missing_columns": allow_missing_columns,
            "source_column": source_column,
        }

    @classmethod
    def from_partitions(
        cls,
        name: str,
        listing: PartitionListing,
        read: Callable[[PartitionListing], DataFrame],
        **options: Any,
    ) -> FanIn:
        """A fan-in whose parents are the listing's expected partitions, read in one scan.

        Present partitions are `success`, missing ones `failed` ("missing"); `read` gets the
        listing (e.g. `lambda l: read_partitions(spark, l, format="json", schema=...)`).
        """
        return cls(name, PartitionParents(listing, read), **options)

    def run(self) -> FanInResult:
        """Settle every parent, apply the rule, and return the combined input or the fallback.

        Raises:
            TriggerRuleError: the rule says the child must not run and there is no fallback;
                it names the parents that failed or are missing, and why.
        """
        outcomes, frames = self._settle()
        result = FanInResult(self.name, self.trigger_rule, tuple(outcomes), triggered=False)
        statuses = [o.status for o in outcomes]
        completeness = result.completeness
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
                        for o in outcomes
                        if o.status != "success"
                    ),
                    completeness,
                )
            return replace(result, fallback=self.on_not_triggered(result))
        data = None
        if frames:
            combined = (
                frames[0] if len(frames) == 1 else union_by_name(frames, **self._union_options)
            )
            data = with_completeness(combined, completeness)
        return replace(result, triggered=True, data=data)

    def _settle(self) -> tuple[list[ParentOutcome], list[DataFrame]]:
        if isinstance(self.parents, PartitionParents):
            listing = self.parents.listing
            outcomes = [
                ParentOutcome(p, "success")
                if p in listing.present
                else ParentOutcome(p, "failed", f"missing: no data under {listing.root}/{p}")
                for p in listing.expected
            ]
            return outcomes, [self.parents.read(listing)] if listing.present else []
        settled: dict[str, tuple[ParentOutcome, DataFrame | None]] = {}
        tasks: dict[str, Callable[[], DataFrame]] = {}
        for name, parent in self.parents.items():
            if isinstance(parent, DataFrame):
                settled[name] = (ParentOutcome(name, "success"), parent)
            else:
                tasks[name] = parent
        if tasks:
            workers = min(self.max_parallel or len(tasks), len(tasks))
            with ThreadPoolExecutor(workers, thread_name_prefix=f"fan-in-{self.name}") as pool:
                futures = {
                    name: pool.submit(_settle_task, name, task) for name, task in tasks.items()
                }
                for name, future in futures.items():
                    settled[name] = future.result()
        ordered = [settled[name] for name in self.parents]
        frames = [df for outcome, df in ordered if outcome.status == "success" and df is not None]
        return [outcome for outcome, _ in ordered], frames


def _settle_task(
    name: str, task: Callable[[], DataFrame]
) -> tuple[ParentOutcome, DataFrame | None]:
    try:
        return ParentOutcome(name, "success"), task()
    except ParentSkipped as skipped:
        return ParentOutcome(name, "skipped", str(skipped) or "skipped"), None
    except Exception as exc:  # noqa: BLE001 - a failed parent is an outcome the rule weighs
        log.warning("fan-in parent %s failed: %s", name, error_summary(exc))
        return ParentOutcome(name, "failed", error_summary(exc)), None
