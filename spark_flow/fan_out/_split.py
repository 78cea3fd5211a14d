"""Parallel Split: every branch runs, on one persisted read of the common input.

As the chapter asks for it in the data processing layer:

- the common input is read once: persisted (default `MEMORY_AND_DISK_DESER`, as `df.cache()`),
  filled by the branches' own jobs as they read it (each partition computed once: a branch
  reaching a partition that another is computing waits for its cached copy), and released in
  a `finally`, also when a branch fails;
- branches run concurrently in threads, each under its own Spark tag and job description (and
  its own FAIR pool where the session schedules FAIR), so the UI tells them apart;
- branches share nothing mutable: each gets the persisted DataFrame and a writer of its own;
- each branch writes idempotently under `app_id=<app_id>.<branch>` and `txn_version`, so
  rerunning a split after one branch failed writes only what is missing: exactly once.

    split = ParallelSplit("devices", [
        Branch("raw", "data/devices_raw"),
        Branch("enriched", "data/devices_enriched", transform=enrich),
    ])
    report = split.run(spark.read.json("input"), txn_version=42)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from spark_flow._common import check_max_parallel, check_name, check_unique, one_line
from spark_flow.errors import (
    InvalidArgumentError,
    ParallelSplitError,
    UnknownValueError,
)
from spark_flow.outputs import (
    FileOutput,
    MicroBatchWriter,
    OutputWriter,
    already_written,
    output_factory,
    output_types,
)
from spark_flow.session import cancel, cancellable, job_description, scheduler_pool

log = logging.getLogger(__name__)

BranchStatus = Literal["success", "already_done", "failed", "cancelled"]
"""The words of `spark_flow.status` a branch of a split uses; `BranchReport` says when."""
BRANCH_STATUSES: tuple[BranchStatus, ...] = get_args(BranchStatus)


def _unchanged(df: DataFrame) -> DataFrame:
    return df


@dataclass(frozen=True)
class Branch:
    """One branch of a Parallel Split: transform the shared input, write it to `output`.

    Attributes:
        name: unique within the split; part of the branch's Delta app id.
        output: where the branch writes.
        transform: `DataFrame -> DataFrame` applied to the persisted input (default: none).
        writer: an output type (`delta`, `parquet`, `csv`, `json`, or a registered one), or a
            writer object; a type gives each run a fresh writer, from the factory registered
            when the branch is defined.
    """

    name: str
    output: str
    transform: Callable[[DataFrame], DataFrame] = _unchanged
    writer: str | OutputWriter = "delta"
    # A type's factory, bound here: a split's foreachBatch function runs in a Spark Connect
    # server's Python, whose registry lacks the types this process registered.
    _factory: Callable[[], OutputWriter] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        check_name("branch name", self.name)
        if not isinstance(self.output, str) or not self.output:
            raise InvalidArgumentError(
                "output", f"branch {self.name!r} got {self.output!r}", "Pass the output's path."
            )
        if not callable(self.transform):
            raise InvalidArgumentError(
                "transform",
                f"branch {self.name!r} got {self.transform!r}",
                "Pass a DataFrame -> DataFrame function.",
            )
        if isinstance(self.writer, str):
            if self.writer not in output_types():
                raise UnknownValueError("writer", self.writer, output_types())
            object.__setattr__(self, "_factory", output_factory(self.writer))
        elif not callable(getattr(self.writer, "write", None)):
            raise InvalidArgumentError(
                "writer",
                f"branch {self.name!r} got {self.writer!r}, which has no write() method",
                "Pass an output type name or an OutputWriter.",
            )

    def new_writer(self) -> OutputWriter:
        if not isinstance(self.writer, str):
            return self.writer
        return (self._factory or output_factory(self.writer))()


@dataclass(frozen=True)
class BranchReport:
    """What one branch did.

    Attributes:
        name: the branch's name.
        output: where it writes.
        status: `success` (it wrote the batch now), `already_done` (its writer already holds
            the batch's txn version, so nothing was written; `reason` says so), `failed`
            (`error` says why), or `cancelled` (fail-fast stopped it, or it never started
            because another branch failed first).
        seconds: how long it ran.
        rows_written: rows written now (0 unless `success`).
        table_version: the version its write committed, or the table's when `already_done`.
        reason: why it was `already_done`.
        error: why it `failed` or was `cancelled`.
    """

    name: str
    output: str
    status: BranchStatus
    seconds: float
    rows_written: int = 0
    table_version: int | None = None
    reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in BRANCH_STATUSES:
            raise UnknownValueError("status", self.status, BRANCH_STATUSES)


@dataclass(frozen=True)
class SplitReport:
    """The outcome of a Parallel Split run; `branches` follow the split's branch order."""

    split: str
    app_id: str
    txn_version: int | None
    branches: tuple[BranchReport, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[BranchReport, ...]:
        return tuple(b for b in self.branches if b.status in ("failed", "cancelled"))

    def branch(self, name: str) -> BranchReport:
        for report in self.branches:
            if report.name == name:
                return report
        raise UnknownValueError("branch", name, [b.name for b in self.branches])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParallelSplit:
    """Run every branch on one persisted read of the input; see the module docstring.

    Its batch run, its `foreachBatch` form and its replay check share the branch app ids and
    the txn version that make a rerun exactly once, so they stay in this one, longer, class.

    Attributes:
        name: the split's name; the default app id of its writes.
        branches: at least one, with unique names.
        storage_level: how the input is persisted while the branches run.
        max_parallel: branches running at once (default: all of them).
        fail_fast: on the first failure, cancel the running branches and start no more;
            by default the others finish and one error names every failed branch.
    """

    name: str
    branches: Sequence[Branch]
    storage_level: StorageLevel = field(default_factory=lambda: StorageLevel.MEMORY_AND_DISK_DESER)
    max_parallel: int | None = None
    fail_fast: bool = False

    def __post_init__(self) -> None:
        check_name("split name", self.name)
        object.__setattr__(self, "branches", tuple(self.branches))
        if not self.branches:
            raise InvalidArgumentError(
                "branches", f"split {self.name!r} has none", "Pass at least one Branch."
            )
        check_unique(
            "branches",
            f"split {self.name!r}",
            [b.name for b in self.branches],
            "a branch's name is part of its Delta app id",
        )
        check_max_parallel(self.max_parallel, "branches")

    def run(
        self, source: DataFrame, *, app_id: str | None = None, txn_version: int | None = None
    ) -> SplitReport:
        """Persist `source`, run the branches, release it; raise if any branch failed.

        Args:
            source: the common input, read once.
            app_id: stable name of this writer (default: the split's name); branch `b` writes
                as `<app_id>.b`.
            txn_version: the batch number (Delta's txnVersion). Rerunning with the same one skips
                the branches that committed it; Delta skips such a replay even if the data
                differs, so new data needs a new number.

        Returns:
            The report, when every branch is `success` or `already_done`.

        Raises:
            InvalidArgumentError: no `txn_version` for a split with a file output branch
                (before any branch writes).
            ParallelSplitError: one or more branches failed or were cancelled; it names them
                with their causes and carries the full report.
        """
        app = app_id or self.name
        check_name("app_id", app)
        self._check_batch_numbered(txn_version)
        replayed = self._replayed(app, txn_version)
        if replayed is not None:
            log.info(
                "split %s: every branch already wrote batch %s; input not read",
                self.name,
                txn_version,
            )
            return SplitReport(self.name, app, txn_version, replayed)
        owns_cache = not source.is_cached
        # No job of its own materializes the input: the branches' jobs fill the cache as they
        # read it. Spark locks a block while a task computes it, so a branch reaching a
        # partition another branch is computing waits for it and reads the cached copy.
        shared = source.persist(self.storage_level) if owns_cache else source
        try:
            log.info("split %s: input persisted (%s)", self.name, shared.storageLevel)
            branches = self._run_branches(shared, app, txn_version)
        finally:
            if owns_cache:
                shared.unpersist()
        report = SplitReport(self.name, app, txn_version, branches)
        for branch in branches:
            log.info(
                "split %s, branch %s: %s in %.2fs, %d rows%s",
                self.name,
                branch.name,
                branch.status,
                branch.seconds,
                branch.rows_written,
                f" ({branch.reason or branch.error})" if branch.reason or branch.error else "",
            )
        if report.failed:
            raise ParallelSplitError(
                self.name, tuple((b.name, b.error or b.status) for b in report.failed), report
            )
        return report

    def for_each_batch(self, *, app_id: str | None = None) -> MicroBatchWriter:
        """This split as a `foreachBatch` function: each micro-batch read once, every branch once.

        The micro-batch id is the batch, so a micro-batch replayed after a crash skips the
        branches that committed it and writes the others; a failed branch fails the micro-batch
        (the query stops naming it) and a restart from the checkpoint completes it.

        Example:
            >>> sink = split.for_each_batch(app_id="devices-stream")
            >>> stream.writeStream.foreachBatch(sink).option("checkpointLocation", ck).start()
        """
        app = app_id or self.name
        check_name("app_id", app)
        return MicroBatchWriter(
            app,
            lambda batch, batch_id: self.run(batch, app_id=app, txn_version=batch_id),
            ahead=lambda batch_id: self.later_batch(app, batch_id),
        )

    def later_batch(self, app_id: str, batch_id: int) -> str | None:
        """Why a branch's output already holds a batch of `app_id` after `batch_id`, or None.

        A stream replays only its last micro-batch, so a later batch in an output means the
        query was started over (a new checkpoint) under an app id already used: the
        `ahead` check of a `MicroBatchWriter` that runs this split in `foreachBatch`."""
        for branch in self.branches:
            later = already_written(
                branch.new_writer(), branch.output, app_id=f"{app_id}.{branch.name}",
                txn_version=batch_id + 1,
            )  # fmt: skip
            if later is not None:
                return f"branch {branch.name!r}: {later}"
        return None

    def _check_batch_numbered(self, txn_version: int | None) -> None:
        """Refuse, before any branch writes, a run without a batch number that a file output
        needs: the other branches would commit (without a txn version, so not idempotently)
        and the rerun with a number would write them twice."""
        if txn_version is not None:
            return
        files = [b.name for b in self.branches if isinstance(b.new_writer(), FileOutput)]
        if files:
            raise InvalidArgumentError(
                "txn_version",
                f"split {self.name!r} got none, and its file output branches "
                f"({', '.join(files)}) publish each batch as batch_id=<txn_version>/",
                "Pass the batch number, e.g. txn_version=20240101 (the run date); it also makes "
                "the Delta branches' writes idempotent.",
            )

    def _replayed(self, app_id: str, txn_version: int | None) -> tuple[BranchReport, ...] | None:
        """All branches `already_done` when every writer says it holds the batch, else None."""
        if txn_version is None:
            return None
        reports = []
        for branch in self.branches:
            reason = already_written(
                branch.new_writer(), branch.output, app_id=f"{app_id}.{branch.name}",
                txn_version=txn_version,
            )  # fmt: skip
            if reason is None:
                return None
            reports.append(BranchReport(branch.name, branch.output, "already_done", 0.0,
                                        reason=reason))  # fmt: skip
        return tuple(reports)

    def _run_branches(
        self, shared: DataFrame, app_id: str, txn_version: int | None
    ) -> tuple[BranchReport, ...]:
        run_tag = uuid.uuid4().hex[:8]
        tags = {b.name: f"spark_flow.{self.name}.{b.name}.{run_tag}" for b in self.branches}
        stop = threading.Event()
        reports: dict[str, BranchReport] = {}
        workers = min(self.max_parallel or len(self.branches), len(self.branches))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"split-{self.name}") as pool:
            pending: dict[Future[BranchReport], Branch] = {
                pool.submit(
                    self._run_branch,
                    b,
                    shared,
                    app_id=app_id,
                    txn_version=txn_version,
                    tag=tags[b.name],
                    stop=stop,
                ): b
                for b in self.branches
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    report = future.result()
                    reports[report.name] = report
                    del pending[future]
                    if report.status == "failed" and self.fail_fast and not stop.is_set():
                        stop.set()
                        for other in pending.values():
                            cancel(shared.sparkSession, tags[other.name])
        return tuple(reports[b.name] for b in self.branches)

    def _run_branch(
        self,
        branch: Branch,
        shared: DataFrame,
        *,
        app_id: str,
        txn_version: int | None,
        tag: str,
        stop: threading.Event,
    ) -> BranchReport:
        started = time.perf_counter()
        if stop.is_set():
            return BranchReport(branch.name, branch.output, "cancelled", 0.0, error="not started")
        spark = shared.sparkSession
        try:
            with (
                cancellable(spark, tag),
                job_description(spark, f"{self.name}: branch {branch.name}"),
                scheduler_pool(spark, f"{self.name}.{branch.name}"),
            ):
                result = branch.new_writer().write(
                    branch.transform(shared),
                    branch.output,
                    app_id=f"{app_id}.{branch.name}",
                    txn_version=txn_version,
                )
        except Exception as exc:  # noqa: BLE001 - recorded; run() raises all failures together
            status: BranchStatus = "cancelled" if stop.is_set() else "failed"
            return BranchReport(
                branch.name,
                branch.output,
                status,
                time.perf_counter() - started,
                error=one_line(exc),
            )
        return BranchReport(
            branch.name,
            branch.output,
            "success" if result.committed else "already_done",
            time.perf_counter() - started,
            rows_written=result.rows_written,
            table_version=result.table_version,
            reason=result.skipped_reason,
        )
