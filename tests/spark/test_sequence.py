"""Local Sequencer: free chaining, restart boundaries, resume, recompute, cleanup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow.errors import StepFailedError
from spark_flow.sequence import LocalSequencer, sql_step, step


def optimized_plan(df: DataFrame) -> str:
    plan = df._jdf.queryExecution().optimizedPlan().toString()
    return re.sub(r"#\d+L?", "#", plan)  # expression ids differ between two analyses


def add_total(df: DataFrame) -> DataFrame:
    return df.withColumn("total", F.col("id") * 2)


def test_a_sequence_is_the_same_plan_as_the_steps_chained_by_hand(spark: SparkSession) -> None:
    source = spark.range(100)
    chain = LocalSequencer(
        "chain",
        [
            step("total", add_total),
            sql_step("big", "SELECT id, total FROM {input} WHERE total > 10"),
            step("named", lambda df: df.withColumnRenamed("total", "doubled")),
        ],
    )
    by_hand = spark.sql(
        "SELECT id, total FROM {input} WHERE total > 10", input=add_total(source)
    ).withColumnRenamed("total", "doubled")

    assert source.transform(chain).sameSemantics(by_hand)
    assert optimized_plan(source.transform(chain)) == optimized_plan(by_hand)


def test_describe_and_repr_list_steps_and_boundaries() -> None:
    chain = LocalSequencer("devices", [step("read", add_total, boundary=True), add_total])

    assert chain.describe() == (
        "LocalSequencer 'devices': 2 steps\n  1. read  [restart boundary]\n  2. add_total"
    )
    assert repr(chain) == "LocalSequencer('devices', [read|, add_total])"


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: LocalSequencer("s", []), "has none"),
        (
            lambda: LocalSequencer("s", [step("a", add_total), step("a", add_total)]),
            "['a'] more than once",
        ),
        (
            lambda: LocalSequencer("s", [step("bad name", add_total)]),
            "'bad name' is not a usable name",
        ),
        (lambda: sql_step("q", "SELECT 1"), "Refer to the previous step's output as {input}"),
        (lambda: step("x", "not callable"), "DataFrame -> DataFrame function"),  # type: ignore[arg-type]
        # Example 6-3's chain written as lambdas: the message named '<lambda>' a bad name.
        (
            lambda: LocalSequencer("s", [add_total, lambda df: df]),
            "step 2 is a lambda, which has no name",
        ),
    ],
)
def test_bad_definitions_fail_when_defined(build, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build()


class Costly:
    """A costly first step whose executions an accumulator counts (one per row computed)."""

    def __init__(self, spark: SparkSession, *, extra_column: bool = False) -> None:
        self.rows = spark.sparkContext.accumulator(0)
        self.extra_column = extra_column

    def __call__(self, df: DataFrame) -> DataFrame:
        counter = self.rows

        @F.udf("long")
        def counted(value):
            counter.add(1)
            return value

        out = df.withColumn("id", counted("id"))
        return out.withColumn("extra", F.lit("x")) if self.extra_column else out


def fail_when(flag: dict[str, bool]) -> step:
    """A last step that fails in its Spark job while `flag['fail']` is set (read at call time)."""

    def last(df: DataFrame) -> DataFrame:
        if not flag["fail"]:
            return df

        @F.udf("long")
        def boom(value):
            raise ValueError("the last step broke")

        return df.withColumn("id", boom("id"))

    return step("last", last)


def len_rows(df: DataFrame) -> int:
    return len(df.collect())  # not count(): Spark would prune the failing column away


def pipeline(costly: Costly, flag: dict[str, bool]) -> LocalSequencer:
    return LocalSequencer(
        "resumable",
        [
            step("costly", costly, boundary=True),
            step("total", add_total),
            fail_when(flag),
        ],
    )


def test_a_rerun_resumes_after_the_boundary_without_recomputing_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    costly, flag = Costly(spark), {"fail": True}
    source = spark.range(0, 50, numPartitions=2)

    with pytest.raises(StepFailedError) as caught:
        pipeline(costly, flag).run(source, run_id="r1", checkpoint_dir=tmp_path, sink=len_rows)
    assert caught.value.step == "sink"
    assert "the last step broke" in str(caught.value)
    assert "run_id='r1'" in str(caught.value)
    assert costly.rows.value == 50

    flag["fail"] = False
    result = pipeline(costly, flag).run(source, run_id="r1", checkpoint_dir=tmp_path, sink=len_rows)

    assert result.output == 50
    assert costly.rows.value == 50  # the costly step was not computed again
    assert result.resumed_from == "costly"
    assert [(r.name, r.status) for r in result.steps] == [
        ("costly", "already_done"),  # restored from its checkpoint
        ("total", "success"),
        ("last", "success"),
    ]
    assert not (tmp_path / "resumable" / "r1").exists()  # cleaned after success


def test_steps_covered_by_the_restored_boundary_are_already_done_too(
    spark: SparkSession, tmp_path: Path
) -> None:
    costly, flag = Costly(spark), {"fail": True}
    steps = [step("total", add_total), step("costly", costly, boundary=True), fail_when(flag)]
    source = spark.range(0, 5, numPartitions=1)
    with pytest.raises(StepFailedError):
        LocalSequencer("covered", steps).run(
            source, run_id="r", checkpoint_dir=tmp_path, sink=len_rows
        )

    flag["fail"] = False
    result = LocalSequencer("covered", steps).run(
        source, run_id="r", checkpoint_dir=tmp_path, sink=len_rows
    )

    assert result.resumed_from == "costly"
    assert [(r.name, r.status, r.seconds) for r in result.steps[:2]] == [
        ("total", "already_done", 0.0),
        ("costly", "already_done", 0.0),
    ]
    assert result.steps[2].status == "success"


def test_another_run_id_starts_fresh(spark: SparkSession, tmp_path: Path) -> None:
    costly, flag = Costly(spark), {"fail": True}
    source = spark.range(0, 20, numPartitions=2)
    with pytest.raises(StepFailedError):
        pipeline(costly, flag).run(source, run_id="a", checkpoint_dir=tmp_path, sink=len_rows)

    flag["fail"] = False
    result = pipeline(costly, flag).run(source, run_id="b", checkpoint_dir=tmp_path, sink=len_rows)

    assert result.resumed_from is None
    assert costly.rows.value == 40
    assert (tmp_path / "resumable" / "a" / "costly").is_dir()  # the failed run's, kept


def test_a_checkpoint_with_another_schema_is_recomputed(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="spark_flow")
    source = spark.range(0, 10, numPartitions=1)
    old = Costly(spark)
    with pytest.raises(StepFailedError):
        pipeline(old, {"fail": True}).run(
            source, run_id="r", checkpoint_dir=tmp_path, sink=len_rows
        )

    changed = Costly(spark, extra_column=True)  # the step's code changed between the runs
    result = pipeline(changed, {"fail": False}).run(
        source, run_id="r", checkpoint_dir=tmp_path, sink=lambda df: df.columns
    )

    assert changed.rows.value == 10
    assert result.resumed_from is None
    assert result.output == ["id", "extra", "total"]
    assert "no longer matches its output schema" in caplog.text


def test_keep_checkpoints_and_boundary_logging(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="spark_flow.sequence")
    result = pipeline(Costly(spark), {"fail": False}).run(
        spark.range(7), run_id="k", checkpoint_dir=tmp_path, sink=len_rows, keep_checkpoints=True
    )

    assert result.output == 7
    assert (tmp_path / "resumable" / "k" / "costly" / "_delta_log").is_dir()
    assert re.search(r"step costly: [\d.]+s, 7 rows checkpointed", caplog.text)
    assert re.search(r"step total: [\d.]+s", caplog.text)
    assert result.steps[0].rows_written == 7


def test_the_running_step_names_the_spark_jobs(spark: SparkSession, tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def look(df: DataFrame) -> DataFrame:
        seen["description"] = spark.sparkContext.getLocalProperty("spark.job.description")
        return df

    LocalSequencer("ui", [step("looked", look)]).run(
        spark.range(1), run_id="x", checkpoint_dir=tmp_path, sink=len_rows
    )

    assert seen["description"] == "ui: looked"
    assert spark.sparkContext.getLocalProperty("spark.job.description") is None
