"""A fan-in's parents as a strategy: each kind settles its parents into outcomes and frames.

`FanIn.run` asks its parents to settle and weighs the outcomes; it never asks which kind they
are. `TaskParents` are DataFrames or tasks run concurrently; `PartitionParents` are the expected
partitions of one dataset, read in one scan. Another kind only has to implement `FanInParents`.
Outcomes use the toolkit's status words (`spark_flow.status`): `success`, `failed`, `skipped`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol, get_args

from pyspark.sql import DataFrame

from spark_flow._common import analysed, error_summary
from spark_flow.errors import InvalidArgumentError, SparkFlowError, UnknownValueError
from spark_flow.fan_in._partitions import PartitionListing

log = logging.getLogger(__name__)

ParentStatus = Literal["success", "failed", "skipped"]
"""The subset of `spark_flow.status.Status` a settled parent can have."""
PARENT_STATUSES: tuple[ParentStatus, ...] = get_args(ParentStatus)
Parent = DataFrame | Callable[[], DataFrame | bool | None]


class SkipParent(SparkFlowError):
    """Raised by a parent task that has nothing to contribute this time; its status: `skipped`.

    Not a failure: like Airflow's `AirflowSkipException` it is the task's own decision, and
    trigger rules weigh it apart from failures (`none_failed`, `all_skipped`, ...).

    Example:
        >>> def hour_07() -> DataFrame:
        ...     if not new_files("hour=07"):
        ...         raise SkipParent("no new file for hour 07")
        ...     return spark.read.json("landing/hour=07")
    """

    def __init__(self, reason: str = "skipped") -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ParentOutcome:
    """How one parent ended: `success`, `failed` (detail: the error) or `skipped` (the reason)."""

    name: str
    status: ParentStatus
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.status not in PARENT_STATUSES:
            raise UnknownValueError("status", self.status, PARENT_STATUSES)


@dataclass(frozen=True)
class SettledParents:
    """Every parent's outcome, in the parents' order, and the frames of those that succeeded.

    `frames` maps a name to a DataFrame; the fan-in unions them by name and tags rows with
    that name when asked for a `source_column`.
    """

    outcomes: tuple[ParentOutcome, ...]
    frames: Mapping[str, DataFrame]


class FanInParents(Protocol):
    """The parents of a fan-in: named when it is defined, settled when it runs."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every parent's name, in order; a fan-in refuses parents without any."""
        ...

    def settle(self, fan_in: str, *, max_parallel: int | None) -> SettledParents:
        """Run or look up every parent once; a parent's failure is an outcome, never raised.

        Args:
            fan_in: the fan-in's name, for logs and thread names.
            max_parallel: parents settled at once, where they run (None: all).
        """
        ...


@dataclass(frozen=True)
class TaskParents:
    """Parents by name: DataFrames (already there: `success`) or tasks returning one.

    Tasks run concurrently when the fan-in runs; a task that raises is `failed` (the detail is
    the error's summary), one that raises `SkipParent` is `skipped` (the detail is its reason).
    A task that wrote its output elsewhere returns None (or True) and succeeds with no rows to
    union; one returning False, as Example 6-11's processors report a failed partition, or any
    other value, is `failed`.

    Attributes:
        tasks: parent name -> DataFrame or task; copied, so later changes to the caller's
            mapping do not change the fan-in.

    Example:
        >>> TaskParents({"web": web_visits, "app": lambda: spark.read.table("app_visits")})
    """

    tasks: Mapping[str, Parent]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        unusable = [
            f"{name!r}: {type(task).__name__}"
            for name, task in self.tasks.items()
            if not (isinstance(task, DataFrame) or callable(task))
        ]
        if unusable:
            raise InvalidArgumentError(
                "tasks",
                f"got {', '.join(unusable)}, which are neither DataFrames nor callables",
                "Pass a DataFrame, or a function without arguments that returns one.",
            )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tasks)

    def settle(self, fan_in: str, *, max_parallel: int | None) -> SettledParents:
        settled: dict[str, tuple[ParentOutcome, DataFrame | None]] = {}
        tasks: dict[str, Callable[[], object]] = {}
        for name, parent in self.tasks.items():
            if isinstance(parent, DataFrame):
                settled[name] = (ParentOutcome(name, "success"), parent)
            else:
                tasks[name] = parent
        if tasks:
            workers = min(max_parallel or len(tasks), len(tasks))
            with ThreadPoolExecutor(workers, thread_name_prefix=f"fan-in-{fan_in}") as pool:
                futures = {
                    name: pool.submit(_settle_task, name, task) for name, task in tasks.items()
                }
                for name, future in futures.items():
                    settled[name] = future.result()
        ordered = [settled[name] for name in self.tasks]
        return SettledParents(
            tuple(outcome for outcome, _ in ordered),
            {outcome.name: df for outcome, df in ordered if df is not None},
        )


def _settle_task(name: str, task: Callable[[], object]) -> tuple[ParentOutcome, DataFrame | None]:
    try:
        returned = task()
        if isinstance(returned, DataFrame):
            analysed(returned)
    except SkipParent as skipped:
        return ParentOutcome(name, "skipped", skipped.reason), None
    except Exception as exc:  # noqa: BLE001 - a failed parent is an outcome the rule weighs
        log.warning("fan-in parent %s failed: %s", name, error_summary(exc))
        return ParentOutcome(name, "failed", error_summary(exc)), None
    if isinstance(returned, DataFrame):
        return ParentOutcome(name, "success"), returned
    # A parent that wrote its output elsewhere returns nothing, or its processing result as a
    # bool (Example 6-11's partition processors: False marks a failed partition).
    if returned is None or returned is True:
        return ParentOutcome(name, "success"), None
    detail = (
        "the task returned False"
        if returned is False
        else f"the task returned a {type(returned).__name__}; a parent task returns its "
        "DataFrame, None when it wrote its output elsewhere, or a bool (its success)"
    )
    log.warning("fan-in parent %s failed: %s", name, detail)
    return ParentOutcome(name, "failed", detail), None


@dataclass(frozen=True)
class PartitionParents:
    """Parents that are the expected partitions of one dataset, read together in one scan.

    A present partition is `success`. A missing one is `failed` with the detail
    "missing: no data under <root>/<partition>": it did not deliver, which is a failure in
    Airflow's sense, not a skip (nobody decided it had nothing to contribute).

    Attributes:
        listing: which expected partitions hold data (`list_partitions`).
        read: reads the present partitions of a listing in one scan, e.g.
            `lambda found: read_partitions(spark, found, format="json", schema=...)`.
    """

    listing: PartitionListing
    read: Callable[[PartitionListing], DataFrame]

    def __post_init__(self) -> None:
        if not callable(self.read):
            raise InvalidArgumentError(
                "read",
                f"got {type(self.read).__name__}, which is not callable",
                "Pass a function from the listing to a DataFrame, e.g. one calling "
                "read_partitions(spark, listing, format=...).",
            )

    @property
    def names(self) -> tuple[str, ...]:
        return self.listing.expected

    def settle(self, fan_in: str, *, max_parallel: int | None) -> SettledParents:
        listing = self.listing
        outcomes = tuple(
            ParentOutcome(p, "success")
            if p in listing.present
            else ParentOutcome(p, "failed", f"missing: no data under {listing.root}/{p}")
            for p in listing.expected
        )
        # One read over every present partition: the listing's root names the rows' source.
        frames = {listing.root: self.read(listing)} if listing.present else {}
        return SettledParents(outcomes, frames)
