"""Exclusive Choice: exactly one of several branches runs, and the reason is on record.

A router returns a `Route` (branch + reason) from a job parameter, the logical date against a
migration date, or the input's schema (metadata only, never its rows); `ExclusiveChoice.choose`
resolves it to exactly one branch and logs why, because a choice buried in a job is the
pattern's "hidden logic" consequence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import Enum
from types import MappingProxyType
from typing import Generic, TypeVar

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from spark_flow._common import check_name, column_key
from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.validation import CORRUPT_RECORD

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """A router's answer: the branch to take and, in words, why."""

    branch: str
    reason: str


def route_by_parameter(parameter: str, value: str) -> Route:
    """Take the branch named by a job parameter, e.g. `--output-type csv` (Example 6-18).

    An enum member (the example parses `--output_type` with `type=OutputType`, a `str` enum)
    routes by its value: the branch is `'csv'`, not `OutputType.csv`, in reports and logs.
    """
    if isinstance(value, Enum):
        value = value.value
    return Route(value, f"{parameter}={value!r}")


def route_by_date(
    run_date: date,
    migration_date: date,
    *,
    before: str = "legacy",
    on_or_after: str = "current",
) -> Route:
    """Route by logical date (Example 6-17): dates before the migration keep the old branch.

    A backfill of a date before `migration_date` therefore reproduces what that date produced
    then, and the migration date itself is the first to take the new branch. Either may be a
    `datetime` (Airflow's `execution_date`, a pendulum datetime, as the example compares it):
    then both are compared as datetimes, a plain date standing for its midnight (in the
    other's time zone when that one has one).

    Raises:
        InvalidArgumentError: an argument that is no date, or one datetime with a time zone
            and the other without (Python cannot order them).
    """
    for argument, value in (("run_date", run_date), ("migration_date", migration_date)):
        if not isinstance(value, date):
            raise InvalidArgumentError(
                argument,
                f"expected a datetime.date, got {value!r}",
                "Parse it first, e.g. date.fromisoformat('2024-01-01').",
            )
    run_at, migration_at = _comparable(run_date, migration_date)
    if run_at < migration_at:
        return Route(before, f"run date {run_date} is before the migration on {migration_date}")
    return Route(
        on_or_after, f"run date {run_date} is on or after the migration on {migration_date}"
    )


def _comparable(run_date: date, migration_date: date) -> tuple[date, date]:
    """The two as values Python can order: dates as they are, else both as datetimes."""
    if not isinstance(run_date, datetime) and not isinstance(migration_date, datetime):
        return run_date, migration_date
    zone = next(
        (d.tzinfo for d in (run_date, migration_date) if isinstance(d, datetime) and d.tzinfo),
        None,
    )
    run_at, migration_at = (
        d if isinstance(d, datetime) else datetime.combine(d, time(), tzinfo=zone)
        for d in (run_date, migration_date)
    )
    if (run_at.utcoffset() is None) != (migration_at.utcoffset() is None):
        raise InvalidArgumentError(
            "migration_date",
            f"run_date {run_date!r} and migration_date {migration_date!r}: one datetime has a "
            "time zone and the other none, so neither is before the other",
            "Give both a time zone (e.g. datetime(2024, 2, 3, tzinfo=timezone.utc)), or pass "
            "plain dates (.date()).",
        )
    return run_at, migration_at


def route_by_schema(
    source: DataFrame | StructType,
    *,
    min_fields: int | None = None,
    required_columns: Sequence[str] = (),
    matching: str = "current",
    otherwise: str = "legacy",
) -> Route:
    """Route by the input's schema (Example 6-20), reading metadata only, never rows.

    The input matches when it has at least `min_fields` top-level fields and every one of
    `required_columns` (found in any case, as Spark resolves columns unless the session sets
    spark.sql.caseSensitive); at least one of the two criteria is needed. Spark's
    `_corrupt_record` column is not a field of the data: a JSON read with an inferred schema
    gains it from one malformed line, and counting it would route on that line.
    """
    if min_fields is None and not required_columns:
        raise InvalidArgumentError(
            "min_fields",
            "neither min_fields nor required_columns was given",
            "Say what a matching schema has, e.g. min_fields=3.",
        )
    schema = source if isinstance(source, StructType) else source.schema
    key = column_key(None if isinstance(source, StructType) else source)
    names = [n for n in schema.fieldNames() if n != CORRUPT_RECORD]
    problems = []
    if min_fields is not None and len(names) < min_fields:
        problems.append(f"has {len(names)} fields, fewer than {min_fields}")
    missing = [c for c in required_columns if key(c) not in {key(n) for n in names}]
    if missing:
        problems.append(f"lacks {', '.join(missing)}")
    if problems:
        return Route(otherwise, f"the input schema {' and '.join(problems)}")
    criteria = [f"has {len(names)} fields (>= {min_fields})"] if min_fields is not None else []
    criteria += [f"has {', '.join(required_columns)}"] if required_columns else []
    return Route(matching, f"the input schema {' and '.join(criteria)}")


@dataclass(frozen=True)
class ChosenBranch(Generic[T]):
    """The branch an Exclusive Choice took, its value and the reason.

    Attributes:
        exclusive_choice: the name of the `ExclusiveChoice` that chose.
        branch: the branch taken.
        value: that branch's value (a writer, an output type, a function ...).
        reason: why, in words: the route's reason, and the fallback to the default if taken.
    """

    exclusive_choice: str
    branch: str
    value: T
    reason: str

    def as_dict(self) -> dict[str, str]:
        """What a job report shows: which choice, which branch, why."""
        return {"choice": self.exclusive_choice, "branch": self.branch, "reason": self.reason}


@dataclass(frozen=True)
class ExclusiveChoice(Generic[T]):
    """Exactly one of several branches, picked by a router's `Route`.

    Branch values can be anything the job needs per branch: a writer, an output path, a
    function to call. A route naming no branch takes `default` when there is one, and is an
    error otherwise; the choice and its reason are logged either way.

    Attributes:
        name: the choice's name, in logs and reports.
        branches: branch name -> value; at least one.
        default: the branch taken when a route names none of `branches` (None: an error).

    Raises:
        InvalidArgumentError: no branches, or a name that cannot name a branch.
        UnknownValueError: a `default` that is not one of the branches.

    Example:
        >>> outputs = ExclusiveChoice("devices_output", {"legacy": "csv", "current": "delta"})
        >>> outputs.choose(route_by_date(date(2023, 12, 31), date(2024, 1, 1))).value
        'csv'
    """

    name: str
    branches: Mapping[str, T]
    default: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_name("choice name", self.name)
        object.__setattr__(self, "branches", MappingProxyType(dict(self.branches)))
        if not self.branches:
            raise InvalidArgumentError(
                "branches", f"choice {self.name!r} has none", "Pass at least one branch."
            )
        for branch in self.branches:
            check_name("branch name", branch)
        if self.default is not None and self.default not in self.branches:
            raise UnknownValueError("default", self.default, list(self.branches))

    def choose(self, route: Route) -> ChosenBranch[T]:
        """The branch `route` names (or the default), logged with its reason.

        Raises:
            UnknownValueError: the route names no branch and there is no default.
        """
        branch, reason = route.branch, route.reason
        if branch not in self.branches:
            if self.default is None:
                raise UnknownValueError(f"{self.name} branch", branch, list(self.branches))
            branch, reason = self.default, f"{reason}; no branch {branch!r}, took the default"
        log.info("exclusive choice %s: branch %s, because %s", self.name, branch, reason)
        return ChosenBranch(self.name, branch, self.branches[branch], reason)
