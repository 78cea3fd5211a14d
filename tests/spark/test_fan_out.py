"""Parallel Split: read once, branches concurrent and isolated, failures named, exactly once."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.delta import WriteResult
from spark_flow.errors import InvalidArgumentError, ParallelSplitError, UnknownValueError
from spark_flow.fan_out import Branch, ParallelSplit, route_by_schema
from spark_flow.outputs import DeltaOutput
from spark_flow.testing import count_spark_jobs, read_output

WRITER_TYPES = ["delta", "parquet", "csv", "json"]


@dataclass
class RecordingWriter:
    """A Delta writer that records when its write ran, and what it saw of the input."""

    intervals: list[tuple[float, float]] = field(default_factory=list)

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        started = time.monotonic()
        result = DeltaOutput().write(df, path, app_id=app_id, txn_version=txn_version)
        self.intervals.append((started, time.monotonic()))
        return result


def test_the_input_is_persisted_while_branches_run_and_released_after(
    spark: SparkSession, tmp_path: Path
) -> None:
    source = spark.range(100)
    seen: list[tuple[bool, StorageLevel]] = []

    def look(df: DataFrame) -> DataFrame:
        seen.append((df.is_cached, df.storageLevel))
        return df

    split = ParallelSplit(
        "lifecycle",
        [Branch("a", str(tmp_path / "a"), look), Branch("b", str(tmp_path / "b"), look)],
        storage_level=StorageLevel.DISK_ONLY,
    )
    report = split.run(source, txn_version=1)

    assert seen == [(True, StorageLevel.DISK_ONLY)] * 2
    assert not source.is_cached
    assert [b.rows_written for b in report.branches] == [100, 100]


def test_the_input_is_released_when_a_branch_fails(spark: SparkSession, tmp_path: Path) -> None:
    source = spark.range(10)

    def explode(df: DataFrame) -> DataFrame:
        raise RuntimeError("branch logic broke")

    split = ParallelSplit(
        "failing", [Branch("ok", str(tmp_path / "ok")), Branch("bad", "x", explode)]
    )
    with pytest.raises(ParallelSplitError):
        split.run(source, txn_version=1)

    assert not source.is_cached


def test_an_input_the_caller_cached_stays_cached(spark: SparkSession, tmp_path: Path) -> None:
    source = spark.range(10).persist()
    ParallelSplit("theirs", [Branch("a", str(tmp_path / "a"))]).run(source, txn_version=1)

    assert source.is_cached
    source.unpersist()


def test_branches_run_concurrently_and_max_parallel_bounds_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    both_started = threading.Barrier(2, timeout=60)

    def wait_for_the_other(df: DataFrame) -> DataFrame:
        both_started.wait()  # a sequential split never gets past this: BrokenBarrierError
        return df

    concurrent = RecordingWriter()
    ParallelSplit(
        "together",
        [
            Branch(name, str(tmp_path / "c" / name), wait_for_the_other, concurrent)
            for name in ("a", "b")
        ],
    ).run(spark.range(10), txn_version=1)
    sequential = RecordingWriter()
    ParallelSplit(
        "one_by_one",
        [Branch(name, str(tmp_path / "s" / name), writer=sequential) for name in ("a", "b", "c")],
        max_parallel=1,
    ).run(spark.range(10), txn_version=1)

    (a_start, a_end), (b_start, b_end) = concurrent.intervals
    assert a_start < b_end  # the two writes overlapped
    assert b_start < a_end
    ordered = sorted(sequential.intervals)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ordered))


def test_every_failed_branch_is_named_and_the_others_complete(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("a file where a table should go")

    def explode(df: DataFrame) -> DataFrame:
        raise ValueError("unknown device type")

    split = ParallelSplit(
        "devices",
        [
            Branch("raw", str(tmp_path / "raw")),
            Branch("enriched", str(tmp_path / "enriched"), explode),
            Branch("legacy", str(tmp_path / "blocked"), writer="csv"),
        ],
    )
    with pytest.raises(ParallelSplitError) as caught:
        split.run(spark.range(20), txn_version=4)

    error = caught.value
    assert [name for name, _ in error.failures] == ["enriched", "legacy"]
    assert "ValueError: unknown device type" in dict(error.failures)["enriched"]
    assert "Rerun with txn_version=4" in str(error)
    assert [b.status for b in error.report.branches] == ["success", "failed", "failed"]
    assert delta.read(spark, str(tmp_path / "raw")).count() == 20


def test_fail_fast_cancels_the_running_branches(spark: SparkSession, tmp_path: Path) -> None:
    started = tmp_path / "slow_started"

    @F.udf("long")
    def slow(value):  # untyped: hints would make it a pandas UDF
        import time
        from pathlib import Path

        Path(str(started)).touch()
        time.sleep(120)  # a long task; fail_fast must cancel it long before it ends
        return value

    @F.udf("long")
    def fail_once_slow_runs(value):  # untyped: hints would make it a pandas UDF
        import time
        from pathlib import Path

        deadline = time.monotonic() + 60
        while not Path(str(started)).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("the fast branch broke")

    split = ParallelSplit(
        "fail_fast",
        [
            Branch("slow", str(tmp_path / "slow"), lambda df: df.withColumn("id", slow("id"))),
            Branch(
                "fast",
                str(tmp_path / "fast"),
                lambda df: df.withColumn("id", fail_once_slow_runs("id")),
            ),
        ],
        fail_fast=True,
    )
    with pytest.raises(ParallelSplitError) as caught:
        split.run(spark.range(0, 1, numPartitions=1), txn_version=1)

    statuses = {b.name: b.status for b in caught.value.report.branches}
    assert statuses == {"slow": "cancelled", "fast": "failed"}
    assert "the fast branch broke" in dict(caught.value.failures)["fast"]
    assert not (tmp_path / "slow" / "_delta_log").exists()


@pytest.mark.parametrize("writer", WRITER_TYPES)
def test_a_rerun_after_a_failed_branch_leaves_every_row_exactly_once(
    spark: SparkSession, tmp_path: Path, writer: str
) -> None:
    source = spark.range(50).withColumn("name", F.concat(F.lit("device-"), F.col("id")))
    first, second = str(tmp_path / "first"), tmp_path / "second"
    second.write_text("not writable yet: a file where the output goes")
    split = ParallelSplit(
        "migration",
        [Branch("first", first, writer=writer), Branch("second", str(second), writer=writer)],
    )

    with pytest.raises(ParallelSplitError) as caught:
        split.run(source, txn_version=1)
    assert [name for name, _ in caught.value.failures] == ["second"]
    second.unlink()
    report = split.run(source, txn_version=1)

    assert [(b.name, b.status) for b in report.branches] == [
        ("first", "already_done"),
        ("second", "success"),
    ]
    for output in (first, str(second)):
        ids = sorted(r.id for r in read_output(spark, writer, output).select("id").collect())
        assert ids == list(range(50))  # 50 rows, never 100


def test_branch_app_ids_are_the_split_app_id_and_the_branch_name(
    spark: SparkSession, tmp_path: Path
) -> None:
    split = ParallelSplit("ids", [Branch("raw", str(tmp_path / "raw"))])
    report = split.run(spark.range(3), app_id="devices-loader", txn_version=9)

    assert report.app_id == "devices-loader"
    assert delta.transaction_version(str(tmp_path / "raw"), "devices-loader.raw") == 9


@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (lambda: ParallelSplit("s", []), InvalidArgumentError, "has none"),
        (
            lambda: ParallelSplit("s", [Branch("a", "x"), Branch("a", "y")]),
            InvalidArgumentError,
            "names ['a'] more than once",
        ),
        (
            lambda: ParallelSplit("s", [Branch("a", "x")], max_parallel=0),
            InvalidArgumentError,
            ">= 1",
        ),
        (lambda: Branch("a b", "x"), InvalidArgumentError, "not a usable name"),
        (lambda: Branch("a", ""), InvalidArgumentError, "Pass the output's path"),
        (lambda: Branch("a", "x", writer="detla"), UnknownValueError, "Did you mean 'delta'?"),
        (lambda: Branch("a", "x", writer=object()), InvalidArgumentError, "no write() method"),
        (
            lambda: Branch("a", "x", transform="upper"),
            InvalidArgumentError,
            "DataFrame -> DataFrame",
        ),
    ],
)
def test_a_split_is_checked_when_it_is_defined(build, error, fragment) -> None:
    with pytest.raises(error) as caught:
        build()
    assert fragment in str(caught.value)


def test_the_split_reads_its_input_once_where_naive_branches_read_it_each(
    spark: SparkSession, tmp_path: Path
) -> None:
    rows_parsed = spark.sparkContext.accumulator(0)

    @F.udf("long")
    def parse(value):  # untyped: hints would make it a pandas UDF
        rows_parsed.add(1)
        return value

    source = spark.range(0, 200, numPartitions=2).withColumn("id", parse("id"))
    branches = [Branch(name, str(tmp_path / "split" / name)) for name in ("a", "b", "c")]
    ParallelSplit("once", branches).run(source, txn_version=1)
    split_scans = rows_parsed.value / 200
    for name in ("a", "b", "c"):
        delta.write(source, str(tmp_path / "naive" / name))
    naive_scans = rows_parsed.value / 200 - split_scans

    assert split_scans == 1
    assert naive_scans == 3


def test_routing_by_schema_runs_no_spark_job(spark: SparkSession, tmp_path: Path) -> None:
    table = str(tmp_path / "devices")
    delta.write(
        spark.createDataFrame([("tv", "TV 1", "1.0")], "type string, n string, v string"), table
    )
    devices = delta.read(spark, table)

    with count_spark_jobs(spark) as jobs:
        decision = route_by_schema(devices, min_fields=3)

    assert decision.branch == "current"
    assert jobs.count == 0


@pytest.mark.parametrize("writer", WRITER_TYPES)
def test_replaying_a_completed_split_does_not_read_its_input(
    spark: SparkSession, tmp_path: Path, writer: str
) -> None:
    split = ParallelSplit(
        "replay", [Branch(name, str(tmp_path / name), writer=writer) for name in ("a", "b")]
    )
    first = split.run(spark.range(30), txn_version=5)

    with count_spark_jobs(spark) as jobs:
        replay = split.run(spark.range(30), txn_version=5)

    assert [b.rows_written for b in first.branches] == [30, 30]
    assert jobs.count == 0
    assert [b.status for b in replay.branches] == ["already_done", "already_done"]
    assert all("already" in (b.reason or "") for b in replay.branches)
    assert [b.error for b in replay.branches] == [None, None]


def test_a_replay_check_that_cannot_read_an_output_lets_the_branch_report_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    ParallelSplit("check", [Branch("a", str(tmp_path / "a"))]).run(spark.range(3), txn_version=1)
    (tmp_path / "b").write_text("a file where the table goes")
    split = ParallelSplit(
        "check", [Branch("a", str(tmp_path / "a")), Branch("b", str(tmp_path / "b"))]
    )

    with pytest.raises(ParallelSplitError) as caught:
        split.run(spark.range(3), txn_version=1)

    assert [b.status for b in caught.value.report.branches] == ["already_done", "failed"]
    assert "is a file, not a folder" in dict(caught.value.failures)["b"]


def test_a_split_with_a_file_branch_and_no_batch_number_writes_no_branch(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The book's Parallel Split writes Delta and CSV (visits_converter's output formats). A
    # CSV branch needs a batch number: without one it failed after the Delta branch had
    # committed a non-idempotent append, which the rerun with a number wrote a second time.
    split = ParallelSplit(
        "visits",
        [
            Branch("delta", str(tmp_path / "delta")),
            Branch("csv", str(tmp_path / "csv"), writer="csv"),
        ],
    )

    with count_spark_jobs(spark) as jobs, pytest.raises(InvalidArgumentError) as caught:
        split.run(spark.range(5))

    assert caught.value.argument == "txn_version"
    assert "csv" in caught.value.problem
    assert jobs.count == 0
    assert not (tmp_path / "delta").exists()
