"""Row accounting: named validation rules, a quarantine for rejected rows, counts on the writes.

A job that drops bad rows silently cannot say where its input went. `Validation` keeps every
row accounted for:

- `Rule("type_too_short", "length(type) > 3")`: a row passes a rule when its condition (SQL or
  a Column) is true; false or null rejects it, under the *first* failed rule's name.
- Malformed records: read with `permissive(schema)`, a line Spark cannot parse keeps its text
  in `_corrupt_record` (Spark's PERMISSIVE mode) instead of vanishing as an all-null row; such
  rows are rejected as `malformed_record` before any rule sees them.
- `Validation.classify` adds `reason` (None for a valid row) and `raw` (the line as read, for
  rejected rows only): a step for `df.transform`, a `LocalSequencer`, or a test.
- `Validation.write` writes the valid rows to the output and the rejected ones (`reason`,
  `raw`) to a quarantine Delta table, `<output>/_spark_flow_quarantine` unless told otherwise,
  both idempotently under the same `(app_id, txn_version)`: a rerun duplicates neither. The
  input is computed once and no `count()` pass runs: on the delta-rs backend one Spark job
  writes both tables and counts the rows it writes; elsewhere the input is persisted and
  `Observation`s on the writes count. The result's `Accounting` says rows read, written,
  rejected by reason.

    devices = spark.read.schema(permissive(DEVICE_SCHEMA)).json("data/devices")
    rules = Validation([Rule("type_too_short", "length(type) > 3"),
                        Rule("no_name", F.col("full_name").isNotNull())])
    result = rules.write(devices, "data/tables/devices", app_id="loader.7", txn_version=7)
    result.accounting.rows_rejected  # {'malformed_record': 2, 'type_too_short': 5, 'no_name': 1}

A quarantine inside the output folder is its own Delta table: readers of the output follow its
`_delta_log` and never list `_`-prefixed folders, as with the readiness markers beside it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_flow import delta, storage
from spark_flow._accounting import Accounting, counted, nothing_read
from spark_flow._common import check_name, check_unique
from spark_flow.delta import WriteResult
from spark_flow.errors import InvalidArgumentError

__all__ = [
    "CORRUPT_RECORD",
    "MALFORMED",
    "QUARANTINE_DIR",
    "Accounting",
    "Rule",
    "Tally",
    "ValidatedWrite",
    "Validation",
    "permissive",
    "quarantine_path",
]

log = logging.getLogger(__name__)

CORRUPT_RECORD = "_corrupt_record"
"""Where Spark's PERMISSIVE mode keeps a line it cannot parse (`columnNameOfCorruptRecord`)."""
MALFORMED = "malformed_record"
"""The reason of a row Spark could not parse."""
QUARANTINE_DIR = "_spark_flow_quarantine"
QUARANTINE = "quarantine"
REASON, RAW = "reason", "raw"
Writer = Callable[..., WriteResult]
"""`write(df, path, *, app_id, txn_version) -> WriteResult`, as `delta.write` and the outputs."""


def permissive(schema: str | StructType) -> StructType:
    """`schema` with the `_corrupt_record` column, so malformed lines are kept, not nulled.

    Read with it (`spark.read.schema(permissive(s)).json(path)`, Spark's default PERMISSIVE
    mode): a line that is not a record, or whose fields do not fit `schema`, has its text in
    `_corrupt_record` and nulls elsewhere.
    """
    parsed = _struct(schema)
    if CORRUPT_RECORD in parsed.fieldNames():
        return parsed
    return StructType([*parsed.fields, StructField(CORRUPT_RECORD, StringType())])


def _struct(schema: str | StructType) -> StructType:
    if isinstance(schema, StructType):
        return schema
    parsed = StructType.fromDDL(schema)
    if not isinstance(parsed, StructType):  # a DDL string of one bare type
        raise InvalidArgumentError(
            "schema", f"expected columns, got {schema!r}", "Pass e.g. 'type STRING, n INT'."
        )
    return parsed


def quarantine_path(output: str) -> str:
    """Where `Validation.write` puts the rows rejected on their way to `output`."""
    return storage.join(output, QUARANTINE_DIR)


@dataclass(frozen=True)
class Rule:
    """A named check a valid row passes: `condition` is true (false or null rejects the row).

    Attributes:
        name: the rejected rows' `reason`; letters, digits, `_`, `.`, `-`.
        condition: a SQL expression (`"length(type) > 3"`) or a Column.
    """

    name: str
    condition: str | Column

    def __post_init__(self) -> None:
        check_name("rule name", self.name)
        if self.name == MALFORMED:
            raise InvalidArgumentError(
                "rule name",
                f"{MALFORMED!r} is the reason of rows Spark could not parse",
                "Give the rule another name.",
            )
        if not isinstance(self.condition, Column) and (
            not isinstance(self.condition, str) or not self.condition.strip()
        ):
            raise InvalidArgumentError(
                "condition",
                f"rule {self.name!r} got {self.condition!r}",
                "Pass a SQL expression such as 'length(type) > 3', or a Column.",
            )

    def passes(self) -> Column:
        """True for a row that passes; never null (a null condition fails the rule)."""
        condition = F.expr(self.condition) if isinstance(self.condition, str) else self.condition
        return F.coalesce(condition, F.lit(False))


@dataclass(frozen=True)
class ValidatedWrite:
    """What `Validation.write` did: the output's write, the quarantine's, and the accounting."""

    output: WriteResult
    quarantine: WriteResult
    quarantine_path: str
    accounting: Accounting


@dataclass(frozen=True)
class Validation:
    """Named rules splitting rows into valid and rejected; see the module docstring.

    Classification, the valid and rejected views and the observed pair of writes share one
    contract (the `reason` and `raw` columns, the first failed rule), so they stay in this one,
    longer, class.

    Attributes:
        rules: checked in order; a rejected row's reason is its first failed rule.
        name: the output's name in the accounting (default `output`).

    Raises:
        InvalidArgumentError: two rules with one name, or a rule that is not a `Rule`.
    """

    rules: Sequence[Rule]
    name: str = "output"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        check_name("validation name", self.name)
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise InvalidArgumentError(
                    "rules", f"expected Rule objects, got {rule!r}", "Wrap it: Rule(name, check)."
                )
        check_unique("rules", "the validation", [r.name for r in self.rules], "a name is a reason")

    def reasons(self, df: DataFrame) -> tuple[str, ...]:
        """The reasons rows of `df` can be rejected for, in the order they are checked."""
        malformed = (MALFORMED,) if CORRUPT_RECORD in df.columns else ()
        return (*malformed, *(r.name for r in self.rules))

    def classify(self, df: DataFrame) -> DataFrame:
        """`df` with `reason` (None when valid) and `raw` (the rejected row as read).

        `raw` is the malformed line itself, or the row as JSON for a row that failed a rule;
        it is computed for rejected rows only.
        """
        clashes = sorted({REASON, RAW} & set(df.columns))
        if clashes:
            raise InvalidArgumentError(
                "df",
                f"it already has the column(s) {clashes} that classify() adds",
                "Rename them first, or classify the DataFrame once.",
            )
        data = [c for c in df.columns if c != CORRUPT_RECORD]
        checks: list[tuple[str, Column]] = [(r.name, r.passes()) for r in self.rules]
        if CORRUPT_RECORD in df.columns:
            checks.insert(0, (MALFORMED, F.col(CORRUPT_RECORD).isNull()))
        reason: Column = F.lit(None).cast("string")
        for name, passes in reversed(checks):  # built inside out: the first failure wins
            reason = F.when(~passes, F.lit(name)).otherwise(reason)
        as_read = F.to_json(F.struct(*data))
        if CORRUPT_RECORD in df.columns:
            # A line of another format (a Parquet file among JSON lines) keeps bytes that are
            # no UTF-8: replaced (U+FFFD), so the quarantine holds text any reader can decode.
            as_read = F.coalesce(F.make_valid_utf8(F.col(CORRUPT_RECORD)), as_read)
        return df.withColumn(REASON, reason).withColumn(
            RAW, F.when(F.col(REASON).isNotNull(), as_read)
        )

    def valid(self, df: DataFrame) -> DataFrame:
        """The rows of `df` that pass every rule, without the columns classification adds."""
        return _valid_rows(self._classified(df))

    def rejected(self, df: DataFrame) -> DataFrame:
        """The rejected rows of `df` as the quarantine holds them: `reason`, `raw`."""
        return self._classified(df).where(F.col(REASON).isNotNull()).select(REASON, RAW)

    def write(
        self,
        df: DataFrame,
        output: str,
        *,
        app_id: str | None = None,
        txn_version: int | None = None,
        transform: Callable[[DataFrame], DataFrame] | None = None,
        writer: Writer = delta.write,
        quarantine: str | None = None,
    ) -> ValidatedWrite:
        """Write valid rows to `output`, rejected ones to the quarantine, and count them.

        `df` is classified unless it already is (a `classify` step ran in a sequence), and
        computed once. With the default writer, no `transform` and the delta-rs backend on a
        classic session, one Spark job writes both tables' files (`delta.write_routed`) and
        counts the rows as it writes them; both tables are committed at once. Otherwise
        (another writer, a transform, Spark Connect, the jvm backend) `df` is persisted: the
        quarantine's write fills the cache, the output's reads it, and an `Observation` on the
        write that computes the input counts the rows. Either way a rerun after a crash that
        let one commit land writes only the other table, and counts every row.

        Args:
            df: the input, read with `permissive(schema)` to catch malformed records.
            output: where valid rows go.
            app_id: stable name of the writer; both writes use it with `txn_version`, each in
                its own table. Delta skips a replay even when the data differs: give new data
                a new txn version.
            txn_version: the batch number.
            transform: applied to valid rows before they are written (e.g. enrichment).
            writer: writes the valid rows (default `delta.write`; an `OutputWriter`'s `write`).
            quarantine: the quarantine Delta table (default `quarantine_path(output)`).

        Returns:
            Both writes and the accounting.

        Raises:
            InvalidArgumentError: `txn_version` without `app_id` or the reverse, or a negative one.
        """
        classified = self._classified(df)
        target = quarantine or quarantine_path(output)
        # One job needs both tables' files written by this process's workers and committed by
        # this driver: not on Connect (the server commits) nor the jvm backend; and a transform
        # or another writer sees only valid rows, so they keep the cached two-write path.
        if (
            writer is delta.write
            and transform is None
            and delta.routed_writes(classified.sparkSession)
        ):
            quarantined, written, accounting = self._write_routed(
                classified, output, target, app_id=app_id, txn_version=txn_version
            )
        else:
            quarantined, written, accounting = self._write_cached(
                classified,
                output,
                target,
                app_id=app_id,
                txn_version=txn_version,
                transform=transform,
                writer=writer,
            )
        log.info(
            "validation %s: %d rows read, %s written, rejected %s",
            self.name,
            accounting.rows_read,
            dict(accounting.rows_written),
            dict(accounting.rows_rejected),
        )
        return ValidatedWrite(written, quarantined, target, accounting)

    def _write_routed(
        self,
        classified: DataFrame,
        output: str,
        target: str,
        *,
        app_id: str | None,
        txn_version: int | None,
    ) -> tuple[WriteResult, WriteResult, Accounting]:
        """Both tables from one Spark job: the input parsed once, no cache, no Observation."""
        reasons = self.reasons(classified)
        data = tuple(c for c in classified.columns if c not in (REASON, RAW, CORRUPT_RECORD))
        done = delta.write_routed(
            classified,
            REASON,
            [
                delta.RoutedTable(target, (REASON, RAW), reasons),
                delta.RoutedTable(output, data, (None,)),
            ],
            app_id=app_id,
            txn_version=txn_version,
        )
        quarantined, written = done.results
        if not (quarantined.committed or written.committed):  # an empty input commits both
            return quarantined, written, nothing_read([self.name], reasons)
        accounting = counted(
            sum(done.rows.values()),
            {self.name: written.rows_written},
            {reason: done.rows.get(reason, 0) for reason in reasons},
            skipped={} if written.committed else {self.name: written.skipped_reason or ""},
        )
        return quarantined, written, accounting

    def _write_cached(
        self,
        classified: DataFrame,
        output: str,
        target: str,
        *,
        app_id: str | None,
        txn_version: int | None,
        transform: Callable[[DataFrame], DataFrame] | None,
        writer: Writer,
    ) -> tuple[WriteResult, WriteResult, Accounting]:
        """Two writes over the persisted input, counted by an Observation on the first that runs."""
        owns_cache = not classified.is_cached
        shared = (
            classified.persist(StorageLevel.MEMORY_AND_DISK_DESER) if owns_cache else classified
        )
        # One Observation, on the write that computes the input: the quarantine's, unless a
        # rerun after a crash between the two writes finds it committed (a log read, no job).
        replayed = (
            app_id is not None
            and txn_version is not None
            and delta.already_committed(
                target, app_id=app_id, txn_version=txn_version, spark=classified.sparkSession
            )
            is not None
        )
        tally = Tally(self)
        rejected_rows = self.rejected if replayed else tally.rejected(QUARANTINE)
        valid_rows = tally.valid(self.name) if replayed else self.valid
        try:
            quarantined = delta.write(
                rejected_rows(shared),
                target,
                # Delta's transaction needs both; a writer of its own may take an app id alone.
                app_id=app_id if txn_version is not None else None,
                txn_version=txn_version,
            )
            valid = valid_rows(shared)
            if transform is not None:
                valid = transform(valid)
            written = writer(valid, output, app_id=app_id, txn_version=txn_version)
        finally:
            if owns_cache:
                shared.unpersist()
        computed = [k for k, r in ((QUARANTINE, quarantined), (self.name, written)) if r.committed]
        accounting = tally.accounting(
            {self.name: written.rows_written},
            computed=computed,
            skipped={} if written.committed else {self.name: written.skipped_reason or ""},
        )
        return quarantined, written, accounting

    def _classified(self, df: DataFrame) -> DataFrame:
        return df if REASON in df.columns and RAW in df.columns else self.classify(df)


def _valid_rows(classified: DataFrame) -> DataFrame:
    kept = classified.where(F.col(REASON).isNull())
    return kept.drop(REASON, RAW, *([CORRUPT_RECORD] if CORRUPT_RECORD in kept.columns else []))


class Tally:
    """Rows read and rejected, counted by `Observation`s on the writes that compute them.

    For outputs another pattern writes, e.g. the branches of a `ParallelSplit` on a classified,
    persisted input: `valid(key)` and `rejected(key)` are transforms that observe their input
    before they select, so each write that runs counts every row, and `accounting` reads the
    counts of one that ran (`computed`). A tally counts one batch: make one per batch.

        tally = Tally(rules)
        split = ParallelSplit("devices", [Branch("raw", raw, tally.valid("raw")),
                                          Branch("quarantine", q, tally.rejected("quarantine"))])
    """

    def __init__(self, validation: Validation) -> None:
        self.validation = validation
        self._seen: dict[str, Observation] = {}
        # Until a write observes its input: a batch read with `permissive` may reject rows as
        # malformed, and a rerun that computes nothing lists every reason with zeros too.
        self._reasons: tuple[str, ...] = (MALFORMED, *(r.name for r in validation.rules))
        self._guard = threading.Lock()  # a split's branches build their plans in threads

    def observe(self, key: str, df: DataFrame) -> DataFrame:
        """`df` classified and counted under `key` when an action runs over it."""
        classified = self.validation._classified(df)
        reasons = self.validation.reasons(classified)
        # Unique: runs in threads of one session (a backfill) must not share a metric's name.
        observation = Observation(f"spark_flow_accounting_{uuid.uuid4().hex[:8]}")
        # Metric names by position: a rule's name may hold characters an alias must not.
        per_reason = [F.count_if(F.col(REASON) == r).alias(f"r{i}") for i, r in enumerate(reasons)]
        with self._guard:
            self._seen[key], self._reasons = observation, reasons
        return classified.observe(observation, F.count(F.lit(1)).alias("rows"), *per_reason)

    def valid(self, key: str) -> Callable[[DataFrame], DataFrame]:
        """A transform: the valid rows of its input, counted under `key`."""
        return lambda df: _valid_rows(self.observe(key, df))

    def rejected(self, key: str) -> Callable[[DataFrame], DataFrame]:
        """A transform: the rejected rows (`reason`, `raw`) of its input, counted under `key`."""
        return lambda df: self.observe(key, df).where(F.col(REASON).isNotNull()).select(REASON, RAW)

    def accounting(
        self,
        written: Mapping[str, int],
        *,
        computed: Sequence[str],
        skipped: Mapping[str, str] | None = None,
        why: str | None = None,
    ) -> Accounting:
        """The accounting of a batch whose outputs got `written` rows.

        Args:
            written: rows committed per output.
            computed: keys whose writes ran (committed); the first observed one is read. A
                skipped write computed nothing: its Observation would wait forever.
            skipped: outputs that already held the batch, and why; the note names them.
            why: why rows written differ from rows read otherwise, e.g. `aggregated by day`.
        """
        key = next((k for k in computed if k in self._seen), None)
        if key is None:
            return nothing_read(written, self._reasons)
        metrics = self._seen[key].get
        rejected = {reason: int(metrics[f"r{i}"]) for i, reason in enumerate(self._reasons)}
        return counted(int(metrics["rows"]), written, rejected, skipped=skipped, why=why)
