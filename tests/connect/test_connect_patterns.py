"""Every pattern helper on a Spark Connect session: the same calls as on a classic one."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import StepFailedError
from spark_flow.fan_in import FanIn, PartitionParents, TaskParents, list_partitions, read_partitions
from spark_flow.fan_out import Branch, ExclusiveChoice, ParallelSplit, route_by_date
from spark_flow.files import read_files
from spark_flow.generate import DEVICE_SCHEMA, generate_devices, generate_visits
from spark_flow.markers import mark_ready, read_ready, wait_until_ready
from spark_flow.outputs import output_writer
from spark_flow.sequence import LocalSequencer, sql_step, step
from spark_flow.testing import assert_df_equal, read_output
from spark_flow.validation import Rule, Validation


def devices(spark: SparkSession, folder: Path, rows: int = 20) -> DataFrame:
    return spark.read.schema(DEVICE_SCHEMA).json(str(generate_devices(folder, rows=rows, seed=1)))


def test_a_local_sequencer_resumes_from_its_boundary_after_the_sink_failed(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    broken = {"sink": True}

    def sink(out: DataFrame) -> delta.WriteResult:
        if broken["sink"]:
            raise RuntimeError("the sink broke")
        return delta.write(out, str(tmp_path / "out"), app_id="seq", txn_version=1)

    sequence = LocalSequencer("devices", [
        step("upper", lambda df: df.withColumn("type", F.upper("type")), boundary=True),
        sql_step("long", "SELECT * FROM {input} WHERE length(type) > 3"),
    ])  # fmt: skip
    raw = devices(connect_spark, tmp_path / "in")
    with pytest.raises(StepFailedError, match="the sink broke"):
        sequence.run(raw, run_id="r1", checkpoint_dir=str(tmp_path / "cp"), sink=sink)

    broken["sink"] = False
    report = sequence.run(raw, run_id="r1", checkpoint_dir=str(tmp_path / "cp"), sink=sink)

    assert report.resumed_from == "upper"
    assert [(s.name, s.status) for s in report.steps] == [("upper", "already_done"),
                                                          ("long", "success")]  # fmt: skip
    assert report.output.committed
    assert delta.read(connect_spark, str(tmp_path / "out")).count() == report.output.rows_written


def test_readiness_markers_hand_over_exactly_the_marked_version(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = str(tmp_path / "ready")
    result = delta.write(devices(connect_spark, tmp_path / "in"), table, app_id="p", txn_version=1)
    mark_ready(table, run_id="run-1", row_count=result.rows_written,
               table_version=result.table_version)  # fmt: skip
    delta.write(devices(connect_spark, tmp_path / "more", 5), table, app_id="p", txn_version=2)

    marker = wait_until_ready(table, timeout=10, poke_interval=1)

    assert read_ready(connect_spark, marker).count() == 20  # version 0, not the newer one


def test_fan_in_of_tasks_and_of_partitions(connect_spark: SparkSession, tmp_path: Path) -> None:
    tasks = FanIn("tasks", TaskParents({
        "a": lambda: connect_spark.createDataFrame([(1,)], "v long"),
        "b": connect_spark.createDataFrame([(2,)], "v long"),
    }), trigger_rule="all_success")  # fmt: skip
    assert sorted(r.v for r in tasks.run().data.collect()) == [1, 2]  # type: ignore[union-attr]

    generate_visits(tmp_path / "visits", date="2024-01-01", rows_per_hour=2, skip_hours=(3,))
    hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(24)]
    listing = list_partitions(str(tmp_path / "visits"), hours)
    schema = ("visit_id STRING, event_time TIMESTAMP, user_id STRING, page STRING, "
              "browser STRING, country STRING, duration_ms BIGINT")  # fmt: skip
    fan_in = FanIn(
        "visits",
        PartitionParents(listing, lambda found: read_partitions(connect_spark, found,
                                                                format="json", schema=schema)),
        trigger_rule="all_done", min_completeness=0.5,
    )  # fmt: skip
    report = fan_in.run()

    assert len(report.missing) == 1  # hour 03
    assert report.data is not None
    assert report.data.count() == 46


def test_inputs_found_under_a_relative_path_are_read_from_there(
    connect_spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Listed here, read by the server: both must mean the client's folder, not the server's.
    monkeypatch.chdir(tmp_path)
    generate_visits(Path("visits"), date="2024-01-01", rows_per_hour=2)
    generate_devices(Path("devices"), rows=7, seed=2)
    listing = list_partitions("visits", [{"date": "2024-01-01", "hour": "05"}])

    visits = read_partitions(connect_spark, listing, format="json")
    landed = read_files(connect_spark, "devices", format="json", schema=DEVICE_SCHEMA)

    assert visits.count() == 2
    assert landed.count() == 7


def test_a_parallel_split_writes_each_branch_once(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    split = ParallelSplit("devices", [
        Branch("raw", str(tmp_path / "raw")),
        Branch("named", str(tmp_path / "named"),
               transform=lambda df: df.withColumn("full_name", F.upper("full_name"))),
        Branch("legacy", str(tmp_path / "legacy"), writer="csv"),
    ], max_parallel=3)  # fmt: skip
    raw = devices(connect_spark, tmp_path / "in")

    report = split.run(raw, app_id="devices", txn_version=7)
    again = split.run(raw, app_id="devices", txn_version=7)

    assert [(b.name, b.status, b.rows_written) for b in report.branches] == [
        ("raw", "success", 20), ("named", "success", 20), ("legacy", "success", 20)]  # fmt: skip
    assert {b.status for b in again.branches} == {"already_done"}
    assert delta.transaction_version(str(tmp_path / "raw"), "devices.raw") == 7
    assert read_output(connect_spark, "csv", str(tmp_path / "legacy")).count() == 20


def test_exclusive_choice_writes_to_the_chosen_output(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    outputs = ExclusiveChoice("devices_output", {"legacy": "csv", "current": "delta"})
    chosen = outputs.choose(route_by_date(date(2024, 1, 2), migration_date=date(2024, 1, 1)))
    raw = devices(connect_spark, tmp_path / "in")

    result = output_writer(chosen.value).write(raw, str(tmp_path / "out"), app_id="router",
                                               txn_version=20240102)  # fmt: skip

    assert chosen.branch == "current"
    assert result.committed
    assert_df_equal(read_output(connect_spark, "delta", str(tmp_path / "out")), raw)


def test_a_streaming_split_restarted_after_a_failed_branch_writes_every_row_once(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    import _streams
    from pyspark import cloudpickle

    from spark_flow.outputs import DeltaOutput

    # foreachBatch runs on the server, whose Python cannot import the tests' helpers by name.
    cloudpickle.register_pickle_by_value(sys.modules[_streams.__name__])
    expected = _streams.land_files(tmp_path / "in", [20, 30, 40])
    checkpoint = tmp_path / "checkpoint"
    branches = [Branch("raw", str(tmp_path / "raw")),
                Branch("enriched", str(tmp_path / "enriched"),
                       writer=_streams.FailsOnce(DeltaOutput(), txn_version=1))]  # fmt: skip
    split = ParallelSplit("stream", branches)

    with pytest.raises(Exception, match="disk full"):  # the query stops; its error says why
        _streams.stream(connect_spark, tmp_path / "in", split.for_each_batch(app_id="d"),
                        checkpoint)  # fmt: skip
    assert delta.read(connect_spark, str(tmp_path / "enriched")).count() == 20  # batch 0 only

    healed = ParallelSplit("stream", [branches[0], Branch("enriched", str(tmp_path / "enriched"))])
    _streams.stream(connect_spark, tmp_path / "in", healed.for_each_batch(app_id="d"), checkpoint)

    for name in ("raw", "enriched"):
        table = str(tmp_path / name)
        assert delta.read(connect_spark, table).count() == expected.total()
        assert delta.transaction_version(table, f"d.{name}") == 2


def test_a_validated_write_asks_the_server_whether_its_batch_is_committed(
    connect_spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spark_flow.delta import _log
    from spark_flow.errors import StorageError

    def unreachable(path: str) -> None:
        raise StorageError(path, "read the Delta log of", "no credentials in this client")

    # The client cannot read the tables (Databricks: the server holds the credentials).
    monkeypatch.setattr(_log, "open_table", unreachable)
    rules = Validation([Rule("long_type", "length(type) > 3")])
    raw = devices(connect_spark, tmp_path / "in")

    first = rules.write(raw, str(tmp_path / "out"), app_id="v", txn_version=1)
    again = rules.write(raw, str(tmp_path / "out"), app_id="v", txn_version=1)

    assert first.accounting.rows_read == 20
    assert (first.output.committed, first.quarantine.committed) == (True, True)
    assert (again.output.committed, again.quarantine.committed) == (False, False)


def test_a_step_or_parent_building_a_plan_spark_cannot_resolve_fails_where_it_is_built(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    from spark_flow.errors import TriggerRuleError

    # Connect analyses a plan only when asked: unasked, the run succeeded and the error came
    # later, outside the sequence (or in its sink, or in the fan-in's union), not from the step.
    broken = LocalSequencer("s", [step("typo", lambda df: df.select("nope"))])
    fan_in = FanIn("f", TaskParents({"ok": lambda: connect_spark.range(1),
                                     "typo": lambda: connect_spark.range(1).select("nope")}),
                   trigger_rule="all_success")  # fmt: skip

    with pytest.raises(StepFailedError, match="nope") as failed:
        broken.run(connect_spark.range(3), run_id="r", checkpoint_dir=str(tmp_path / "cp"))
    with pytest.raises(TriggerRuleError, match="nope") as unmet:
        fan_in.run()

    assert failed.value.step == "typo"
    assert [p for p, status, _ in unmet.value.not_succeeded] == ["typo"]


def test_a_python_worker_failure_is_summed_up_by_its_exception_as_on_a_classic_session(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    @F.udf("long")
    def overheat(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
        raise RuntimeError("the disk is on fire")

    # Connect's text puts the traceback after a "[PYTHON_EXCEPTION] ...:" prefix and ends it
    # with a SQLSTATE: the summary was Spark's generic first line, without the cause.
    sequence = LocalSequencer("s", [step("hot", lambda df: df.withColumn("id", overheat("id")),
                                         boundary=True)])  # fmt: skip

    with pytest.raises(StepFailedError) as failed:
        sequence.run(connect_spark.range(1), run_id="r", checkpoint_dir=str(tmp_path / "cp"))

    assert failed.value.cause.endswith("RuntimeError: the disk is on fire")
