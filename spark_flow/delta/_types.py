"""Records shared by the Delta API and its backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from spark_flow import storage
from spark_flow.errors import InvalidArgumentError, UnknownValueError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

Mode = Literal["append", "overwrite"]
MODES: tuple[str, ...] = get_args(Mode)
Backend = Literal["jvm", "delta-rs"]
BACKENDS: tuple[str, ...] = get_args(Backend)
MAX_TXN_VERSION = 2**63 - 1
"""The largest txn version: Delta's log stores it as a long."""


def check_txn_version(version: object) -> None:
    """Refuse what cannot be a txn version: Delta's log stores one as a long, 0 or more.

    One check for every writer that takes a batch id (Delta, PostgreSQL's bigint batch column,
    the command line's `--batch-id`), so all refuse the same numbers alike.

    Raises:
        InvalidArgumentError: not an int (a bool is not one), negative, or past a long.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidArgumentError(
            "txn_version",
            f"expected an integer >= 0, got {version!r}",
            "Use the batch number, e.g. a micro-batch id or a date as YYYYMMDD.",
        )
    if version > MAX_TXN_VERSION:
        raise InvalidArgumentError(
            "txn_version",
            f"expected at most {MAX_TXN_VERSION} (Delta stores it as a long), got {version}",
            "Use a smaller batch number, e.g. a date as YYYYMMDD.",
        )


@dataclass(frozen=True)
class WriteRequest:
    """A validated write: where, how, and under which Delta transaction identifier."""

    path: str
    mode: Mode = "append"
    app_id: str | None = None
    txn_version: int | None = None
    partition_by: tuple[str, ...] | None = None
    merge_schema: bool = False
    replace_where: tuple[tuple[str, str], ...] | None = None
    optimize_write: bool = False
    overwrite_schema: bool = False
    dynamic_partitions: bool = False
    # The session's time zone: a zoneless `replace_where` value of a TIMESTAMP partition column
    # is read in it, as Spark reads it (None: this process's zone, as a JVM defaults to).
    time_zone: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InvalidArgumentError(
                "path", f"expected a non-empty table path, got {self.path!r}", "Pass a path."
            )
        # deltalake decodes %XX in a local path too (a store's is refused where it is reached)
        ambiguous = storage.ambiguous_root(self.path) if storage.is_local(self.path) else None
        if ambiguous is not None:
            raise InvalidArgumentError(
                "path",
                f"{self.path!r} is no table location deltalake and Spark agree on",
                ambiguous,
            )
        if self.mode not in MODES:
            raise UnknownValueError("mode", self.mode, MODES)
        if (self.app_id is None) != (self.txn_version is None):
            given, missing = (
                ("txn_version", "app_id") if self.app_id is None else ("app_id", "txn_version")
            )
            raise InvalidArgumentError(
                missing,
                f"{given} was given without {missing}; a Delta transaction needs both",
                "Pass app_id (a stable name of the writing job) and txn_version (its batch "
                "number).",
            )
        if self.app_id is not None and not self.app_id.strip():
            raise InvalidArgumentError("app_id", "it is empty", "Name the writing job.")
        self._check_replace_where()
        for name, value, use in (
            ("optimize_write", self.optimize_write, "to write few, larger files"),
            ("overwrite_schema", self.overwrite_schema, "to replace the table's schema"),
            ("dynamic_partitions", self.dynamic_partitions, "to replace the data's partitions"),
        ):
            if not isinstance(value, bool):
                raise InvalidArgumentError(
                    name, f"expected True or False, got {value!r}", f"Pass {name}=True {use}."
                )
        if self.overwrite_schema:
            self._check_whole_overwrite(
                "overwrite_schema",
                "the schema of the whole table, which {} does not replace",
                "Pass mode='overwrite' without replace_where, or add columns with merge_schema.",
            )
        if self.dynamic_partitions:
            self._check_whole_overwrite(
                "dynamic_partitions",
                "the partitions the data has rows in, which {} does not",
                "Pass mode='overwrite' without replace_where.",
            )
        if self.txn_version is not None:
            check_txn_version(self.txn_version)

    def _check_replace_where(self) -> None:
        if self.replace_where is None:
            return
        if self.mode != "overwrite":
            raise InvalidArgumentError(
                "replace_where",
                f"it replaces partitions, which only mode='overwrite' does, not {self.mode!r}",
                "Pass mode='overwrite' with it.",
            )
        if not self.replace_where:
            raise InvalidArgumentError(
                "replace_where", "it is empty", "Name the partition values to replace."
            )

    def _check_whole_overwrite(self, name: str, replaces: str, fix: str) -> None:
        """`name` needs an overwrite that no other option narrows."""
        narrower = [
            other
            for other, given in (
                ("replace_where", self.replace_where is not None),
                ("dynamic_partitions", self.dynamic_partitions),
            )
            if given and other != name
        ]
        if self.mode != "overwrite" or narrower:
            what = narrower[0] if narrower else f"mode={self.mode!r}"
            raise InvalidArgumentError(name, "it replaces " + replaces.format(what), fix)

    def skip_reason(self, last_version: int | None) -> str | None:
        """Why this write must not run, given the table's last version for our app id."""
        if self.app_id is None or self.txn_version is None or last_version is None:
            return None
        if self.txn_version <= last_version:
            return (
                f"txnAppId={self.app_id!r} already committed txnVersion={last_version} "
                f">= {self.txn_version}"
            )
        return None


@dataclass(frozen=True)
class WriteResult:
    """What a write did.

    Attributes:
        committed: True when this call committed a new table version (or published a batch).
        table_version: the version it committed, or the table's version when skipped; None
            for file outputs, which have no versions.
        rows_written: rows in the committed files (0 when skipped).
        files: paths of the committed data files, relative to the table root.
        skipped_reason: why nothing was committed, when `committed` is False.
    """

    committed: bool
    table_version: int | None
    rows_written: int = 0
    files: tuple[str, ...] = ()
    skipped_reason: str | None = None

    def summary(self) -> dict[str, object]:
        """The fields a job report shows (everything but the file list)."""
        return {
            "committed": self.committed,
            "rows_written": self.rows_written,
            "table_version": self.table_version,
            "skipped_reason": self.skipped_reason,
        }


@dataclass(frozen=True)
class TableInfo:
    """What a Delta table's log says about it, read without a Spark session.

    Attributes:
        path: the table location, as given.
        version: the table's latest version.
        schema: the columns in Spark types, in the table's order.
        partition_columns: the Hive-style partition columns, outermost first.
        reader_features: the protocol's reader features (e.g. `deletionVectors`); empty for
            tables on older protocol versions.
    """

    path: str
    version: int
    schema: StructType
    partition_columns: tuple[str, ...] = ()
    reader_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise InvalidArgumentError(
                "version",
                f"a table version is an integer >= 0, got {self.version!r}",
                "Build TableInfo with spark_flow.delta.table_info(path).",
            )


@dataclass(frozen=True)
class OptimizeReport:
    """What `optimize` did.

    Attributes:
        path: the table, as given.
        committed: True when a compaction commit was made.
        table_version: the version it committed, else the table's version.
        files_removed: small files replaced (still referenced by older versions).
        files_added: the files they were rewritten into.
        partitions: how many partitions were compacted.
        skipped_reason: why nothing was committed, when `committed` is False.
    """

    path: str
    committed: bool
    table_version: int
    files_removed: int = 0
    files_added: int = 0
    partitions: int = 0
    skipped_reason: str | None = None

    def __post_init__(self) -> None:
        counts = (self.files_removed, self.files_added, self.partitions)
        if min(counts) < 0 or self.committed == (self.skipped_reason is not None):
            raise InvalidArgumentError(
                "OptimizeReport",
                f"counts must be >= 0 and a skip needs a reason, got {self}",
                "Let spark_flow.delta.optimize build it.",
            )


@dataclass(frozen=True)
class VacuumReport:
    """What `vacuum` deleted, or would delete with `dry_run=True`.

    Attributes:
        path: the table, as given.
        dry_run: True when nothing was deleted.
        files: data files no retained version references, relative to the table.
        staging: staging folders (write ids) of writers gone for longer than the retention.
        bytes: their total size.
    """

    path: str
    dry_run: bool
    files: tuple[str, ...] = ()
    staging: tuple[str, ...] = ()
    bytes: int = 0

    def __post_init__(self) -> None:
        if self.bytes < 0:
            raise InvalidArgumentError(
                "VacuumReport", f"bytes must be >= 0, got {self.bytes}", "Let vacuum build it."
            )
