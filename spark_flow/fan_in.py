"""Fan-in patterns: combine many parents into one input, and decide whether the child runs.

- `union_by_name` is the chapter's answer to position-based UNION: columns are matched by name,
  numeric types widened explicitly, and the N parents combined in one balanced union, so
  planning grows linearly with N instead of re-analysing an ever longer chain.
- `list_partitions` / `read_partitions`: parents that are partitions of one dataset
  (`date=.../hour=HH/`) are listed without reading data and read in one scan.
- `FanIn` runs parents that are tasks concurrently, records each outcome and applies an
  Airflow trigger rule: `all_success` is the Aligned Fan-In, the others (and
  `min_completeness`) the Unaligned one, whose result says how complete it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from spark_flow import delta
from spark_flow._common import check_name, error_summary
from spark_flow.errors import (
    InvalidArgumentError,
    SchemaMismatchError,
    SparkFlowError,
    TriggerRuleError,
    UnknownValueError,
)

__all__ = [
    "CompletenessRecord",
    "FanIn",
    "FanInResult",
    "ParentOutcome",
    "ParentSkipped",
    "PartitionListing",
    "PartitionParents",
    "TriggerRule",
    "join_fan_in",
    "list_partitions",
    "read_partitions",
    "trigger_rule_met",
    "union_by_name",
    "with_completeness",
    "write_completeness",
]

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
JoinHow = Literal["inner", "left", "right", "full"]
JOIN_HOWS: tuple[str, ...] = get_args(JoinHow)
COMPLETENESS_DIR = "_spark_flow_completeness"
# Widening Spark applies silently by position; here it is explicit, and anything else fails.
_NUMERIC_RANK = {"tinyint": 0, "smallint": 1, "int": 2, "bigint": 3, "float": 4, "double": 5}


def union_by_name(
    parents: Sequence[DataFrame] | Mapping[str, DataFrame],
    *,
    allow_missing_columns: bool = False,
    source_column: str | None = None,
) -> DataFrame:
    """One DataFrame holding every parent's rows, columns matched by name.

    Args:
        parents: the DataFrames, or parent name -> DataFrame (names appear in errors and in
            `source_column`; a sequence's parents are named `parent_0`, `parent_1`, ...).
        allow_missing_columns: fill a column a parent lacks with nulls of the column's type.
        source_column: add this column with each row's parent name.

    Returns:
        The union; columns in order of first appearance, then `source_column`.

    Raises:
        InvalidArgumentError: no parents.
        SchemaMismatchError: a column with incompatible types across parents, or missing from
            a parent without `allow_missing_columns`; it names the column and each parent.

    Example:
        >>> union_by_name({"h00": hour_0, "h01": hour_1}, source_column="hour")
    """
    named = (
        dict(parents)
        if isinstance(parents, Mapping)
        else {f"parent_{i}": df for i, df in enumerate(parents)}
    )
    if not named:
        raise InvalidArgumentError(
            "parents", "there are none to union", "Pass at least one DataFrame."
        )
    target = _target_types(named, allow_missing_columns=allow_missing_columns)
    aligned = []
    for name, df in named.items():
        present = {f.name: f.dataType for f in df.schema.fields}
        columns: list[Column] = [
            _aligned(column, present.get(column), kind) for column, kind in target.items()
        ]
        if source_column is not None:
            columns.append(F.lit(name).alias(source_column))
        aligned.append(df.select(*columns))
    while len(aligned) > 1:  # a balanced tree: each union analyses a small plan
        aligned = [
            aligned[i].union(aligned[i + 1]) if i + 1 < len(aligned) else aligned[i]
            for i in range(0, len(aligned), 2)
        ]
    return aligned[0]


def _aligned(column: str, has: DataType | None, wants: DataType) -> Column:
    if has is None:
        return F.lit(None).cast(wants).alias(column)
    if has == wants:
        return F.col(f"`{column}`")
    return F.col(f"`{column}`").cast(wants).alias(column)


def _target_types(
    named: Mapping[str, DataFrame], *, allow_missing_columns: bool
) -> dict[str, DataType]:
    types: dict[str, dict[str, DataType]] = {}
    for name, df in named.items():
        for field in df.schema.fields:
            types.setdefault(field.name, {})[name] = field.dataType
    target: dict[str, DataType] = {}
    conflicts: list[tuple[str, str | None, str]] = []
    for column, by_parent in types.items():
        missing = [name for name in named if name not in by_parent]
        if missing and not allow_missing_columns:
            having = ", ".join(f"{p}: {t.simpleString()}" for p, t in by_parent.items())
            conflicts.append((column, having, f"missing in {', '.join(missing)}"))
            continue
        distinct = {t.simpleString(): t for t in by_parent.values()}
        if len(distinct) == 1:
            target[column] = next(iter(distinct.values()))
        elif set(distinct) <= set(_NUMERIC_RANK):
            target[column] = distinct[max(distinct, key=_NUMERIC_RANK.__getitem__)]
        else:
            listed = ", ".join(f"{p}: {t.simpleString()}" for p, t in by_parent.items())
            conflicts.append((column, listed, "types that do not widen into one another"))
    if conflicts:
        raise SchemaMismatchError(
            f"union of {', '.join(named)}",
            conflicts,
            fix="Cast the columns to one type in the parents (numbers widen on their own), "
            "or pass allow_missing_columns=True to fill missing columns with nulls.",
        )
    return target


def join_fan_in(
    parents: Mapping[str, DataFrame], on: str | Sequence[str], *, how: str = "inner"
) -> DataFrame:
    """Align parents horizontally: join them on `on`, the chapter's JOIN-style fan-in.

    A non-key column that several parents have is prefixed with each one's name
    (`<parent>_<column>`), so no column is silently taken from the wrong parent.

    Raises:
        InvalidArgumentError: fewer than two parents, or a key a parent lacks or has twice.
        UnknownValueError: an unsupported `how`.
    """
    if how not in JOIN_HOWS:
        raise UnknownValueError("how", how, JOIN_HOWS)
    keys = [on] if isinstance(on, str) else list(on)
    if len(parents) < 2 or not keys:
        raise InvalidArgumentError(
            "parents", f"got {len(parents)} parents and keys {keys}", "Join two or more on a key."
        )
    seen: dict[str, int] = {}
    for name, df in parents.items():
        lowered = [c.lower() for c in df.columns]
        lacking = [k for k in keys if k.lower() not in lowered]
        twice = [k for k in keys if lowered.count(k.lower()) > 1]
        if lacking or twice:
            problem = f"lacks {lacking}" if lacking else f"has {twice} more than once (ambiguous)"
            raise InvalidArgumentError(
                "on", f"parent {name!r} {problem}; its columns are {df.columns}",
                "Rename or select the key columns in that parent first.",
            )  # fmt: skip
        for column in df.columns:
            if column not in keys:
                seen[column] = seen.get(column, 0) + 1
    renamed = [
        df.select(*keys, *(F.col(f"`{c}`").alias(f"{name}_{c}") if seen[c] > 1 else F.col(f"`{c}`")
                           for c in df.columns if c not in keys))
        for name, df in parents.items()
    ]  # fmt: skip
    joined = renamed[0]
    for other in renamed[1:]:
        joined = joined.join(other, on=keys, how=how)
    return joined


@dataclass(frozen=True)
class PartitionListing:
    """Which expected partitions of a dataset exist, found by listing folders only."""

    root: str
    expected: tuple[str, ...]
    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def completeness(self) -> float:
        return len(self.present) / len(self.expected) if self.expected else 0.0


def list_partitions(
    root: str | Path, partitions: Sequence[Mapping[str, object]]
) -> PartitionListing:
    """List `root/k1=v1/k2=v2/` for each expected partition; present = holds a data file.

    Example:
        >>> hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(24)]
        >>> list_partitions("data/visits", hours).missing
        ('date=2024-01-01/hour=07',)
    """
    base = Path(root)
    expected = tuple("/".join(f"{k}={v}" for k, v in p.items()) for p in partitions)
    if not expected:
        raise InvalidArgumentError(
            "partitions", "no partition is expected", "List the partitions the fan-in waits for."
        )
    present = tuple(p for p in expected if _has_data(base / p))
    missing = tuple(p for p in expected if p not in present)
    return PartitionListing(str(base), expected, present, missing)


def _has_data(folder: Path) -> bool:
    return folder.is_dir() and any(
        f.is_file() and not f.name.startswith(("_", ".")) for f in folder.rglob("*")
    )


def read_partitions(
    spark: Any,
    listing: PartitionListing,
    *,
    format: str = "parquet",
    schema: str | None = None,
    options: Mapping[str, str] | None = None,
) -> DataFrame:
    """Read the present partitions in one scan, keeping the partition values as columns.

    One reader over all the paths lets Spark pack many small files into few tasks, where N
    reads and a union plan N scans.

    Raises:
        InvalidArgumentError: no expected partition is present.
    """
    if not listing.present:
        raise InvalidArgumentError(
            "listing",
            f"none of the {len(listing.expected)} expected partitions under {listing.root} exists",
            "Wait for the producer, or check the root and the partition names.",
        )
    reader = spark.read.format(format).option("basePath", listing.root).options(**(options or {}))
    if schema is not None:
        reader = reader.schema(schema)
    paths = [str(Path(listing.root) / p) for p in listing.present]
    df: DataFrame = reader.load(paths)
    return df


def with_completeness(df: DataFrame, completeness: float) -> DataFrame:
    """Add `completeness` (present / expected parents) and `is_approximate` to every row."""
    return df.withColumn("completeness", F.lit(float(completeness))).withColumn(
        "is_approximate", F.lit(completeness < 1.0)
    )


@dataclass(frozen=True)
class CompletenessRecord:
    """How complete a fan-in's output is for one logical date (the chapter's companion table)."""

    dataset: str
    logical_date: str
    expected: int
    present: int
    missing: tuple[str, ...]

    @property
    def completeness(self) -> float:
        return self.present / self.expected if self.expected else 0.0


def write_completeness(spark: Any, output: str, record: CompletenessRecord) -> str:
    """Store `record` in the Delta table `<output>/_spark_flow_completeness`, one row per date.

    Consumers read it without scanning the output; a rerun for the same date replaces its row.
    Returns the table's path.
    """
    path = str(Path(output) / COMPLETENESS_DIR)
    row = spark.createDataFrame(
        [(record.dataset, record.logical_date, record.expected, record.present,
          list(record.missing), record.completeness, datetime.now(timezone.utc))],
        "dataset string, logical_date string, expected int, present int, "
        "missing array<string>, completeness double, computed_at timestamp",
    )  # fmt: skip
    delta.write(row, path, mode="overwrite", partition_by=["logical_date"],
                replace_where={"logical_date": record.logical_date})  # fmt: skip
    return path


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
