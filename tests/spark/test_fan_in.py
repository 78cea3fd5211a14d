"""Fan-in: name-based unions, partitions read in one scan, tasks, rules, completeness."""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow.errors import (
    InvalidArgumentError,
    SchemaMismatchError,
    SparkFlowError,
    TriggerRuleError,
    UnknownValueError,
)
from spark_flow.fan_in import (
    FanIn,
    ParentOutcome,
    ParentStatus,
    PartitionParents,
    SkipParent,
    TaskParents,
    add_completeness_columns,
    join_fan_in,
    list_partitions,
    read_partitions,
    union_by_name,
)
from spark_flow.status import STATUSES
from spark_flow.testing import assert_df_equal, count_spark_jobs


def test_columns_are_matched_by_name_not_position(spark: SparkSession) -> None:
    a = spark.createDataFrame([(1, "x", 2.0)], "a long, b string, c double")
    reordered = spark.createDataFrame([(3.0, "y", 4)], "c double, b string, a long")

    union = union_by_name([a, reordered])

    expected = spark.createDataFrame([(1, "x", 2.0), (4, "y", 3.0)], "a long, b string, c double")
    assert_df_equal(union, expected)


def test_missing_columns_are_typed_nulls_only_when_allowed(spark: SparkSession) -> None:
    full = spark.createDataFrame([(1, "x")], "id long, name string")
    partial = spark.createDataFrame([(2,)], "id long")

    with pytest.raises(SchemaMismatchError) as caught:
        union_by_name({"full": full, "partial": partial})
    union = union_by_name({"full": full, "partial": partial}, allow_missing_columns=True)

    assert caught.value.conflicts == (("name", "full: string", "missing in partial"),)
    assert "allow_missing_columns=True" in str(caught.value)
    assert union.schema["name"].dataType.simpleString() == "string"
    assert sorted(union.collect()) == [(1, "x"), (2, None)]


def test_numbers_widen_explicitly_and_other_conflicts_name_each_parent(
    spark: SparkSession,
) -> None:
    ints = spark.createDataFrame([(1,)], "v int")
    longs = spark.createDataFrame([(2,)], "v long")
    doubles = spark.createDataFrame([(0.5,)], "v double")
    strings = spark.createDataFrame([("3",)], "v string")

    widened = union_by_name({"i": ints, "l": longs, "d": doubles})
    with pytest.raises(SchemaMismatchError) as caught:
        union_by_name({"i": ints, "s": strings})

    assert widened.schema["v"].dataType.simpleString() == "double"
    assert sorted(r.v for r in widened.collect()) == [0.5, 1.0, 2.0]
    assert caught.value.conflicts == (
        ("v", "i: int, s: string", "types that do not widen into one another"),
    )


def test_source_column_tags_each_row_with_its_parent(spark: SparkSession) -> None:
    hours = {f"hour={h:02d}": spark.range(h + 1) for h in range(3)}

    union = union_by_name(hours, source_column="parent")

    counts = {r["parent"]: r["count"] for r in union.groupBy("parent").count().collect()}
    assert counts == {"hour=00": 1, "hour=01": 2, "hour=02": 3}


def test_many_parents_make_one_flat_union(spark: SparkSession) -> None:
    parents = [spark.range(i, i + 1, numPartitions=1) for i in range(200)]

    union = union_by_name(parents)

    plan = union._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count("Union") == 1  # nested unions were combined into one node


def test_parents_differing_in_nested_nullability_union_as_spark_unions_them(
    spark: SparkSession,
) -> None:
    # The book's hourly visits carry a nested `context`; a parent built in code (NOT NULL
    # fields) and one read from files (nullable) failed the union in one order with "cannot
    # cast STRUCT<x: INT> to STRUCT<x: INT NOT NULL>", where unionByName unions them.
    built = spark.range(1).select(
        F.struct(F.lit(1).alias("x")).alias("context"), F.array(F.lit(1)).alias("tags")
    )
    read = spark.createDataFrame([((None,), [None])], "context STRUCT<x: INT>, tags ARRAY<INT>")

    for parents in ({"built": built, "read": read}, {"read": read, "built": built}):
        union = union_by_name(parents)

        assert union.schema == built.unionByName(read).schema
        assert sorted(union.collect(), key=str) == sorted(
            built.unionByName(read).collect(), key=str
        )


def test_an_empty_union_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="there are none to union"):
        union_by_name([])


def hourly(root: Path, hours: list[int], rows: int = 3) -> None:
    for hour in hours:
        folder = root / "date=2024-01-01" / f"hour={hour:02d}"
        folder.mkdir(parents=True)
        lines = [
            f'{{"visit_id": "v{hour}-{i}", "duration_ms": {hour * 10 + i}}}' for i in range(rows)
        ]
        (folder / "part-0.json").write_text("\n".join(lines) + "\n")


EXPECTED = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(24)]


def test_listing_finds_missing_hours_without_a_spark_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    hourly(tmp_path, [h for h in range(24) if h not in (3, 7)])
    (tmp_path / "date=2024-01-01" / "hour=05" / "part-0.json").unlink()  # an empty folder

    with count_spark_jobs(spark) as jobs:
        listing = list_partitions(tmp_path, EXPECTED)

    assert jobs.count == 0
    assert listing.missing == (
        "date=2024-01-01/hour=03",
        "date=2024-01-01/hour=05",
        "date=2024-01-01/hour=07",
    )
    assert len(listing.present) == 21
    assert listing.completeness == 21 / 24


@pytest.mark.parametrize(
    "hidden",
    ["_temporary/0/_temporary/attempt_1/part-0.json", ".spark-staging-1/part-0.json", "_SUCCESS"],
)
def test_a_partition_holding_only_files_spark_does_not_read_is_missing(
    tmp_path: Path, hidden: str
) -> None:
    # A producer still writing (Spark's committer stages under _temporary/) left an hour that
    # Spark's reader sees as empty: counted present, an Aligned Fan-In ran without its rows.
    hourly(tmp_path, [4, 5])
    folder = tmp_path / "date=2024-01-01" / "hour=05"
    (folder / "part-0.json").unlink()
    (folder / hidden).parent.mkdir(parents=True, exist_ok=True)
    (folder / hidden).write_text('{"visit_id": "v5-0", "duration_ms": 50}\n')

    listing = list_partitions(tmp_path, [{"date": "2024-01-01", "hour": h} for h in ("04", "05")])

    assert listing.missing == ("date=2024-01-01/hour=05",)


def test_present_partitions_are_read_in_one_scan_with_their_values(
    spark: SparkSession, tmp_path: Path
) -> None:
    hourly(tmp_path, [0, 1, 5])
    listing = list_partitions(tmp_path, EXPECTED[:6])

    visits = read_partitions(
        spark, listing, format="json", schema="visit_id string, duration_ms long"
    )

    assert sorted(visits.columns) == ["date", "duration_ms", "hour", "visit_id"]
    assert sorted(
        (str(r.date), r.hour) for r in visits.select("date", "hour").distinct().collect()
    ) == [
        ("2024-01-01", 0),
        ("2024-01-01", 1),
        ("2024-01-01", 5),
    ]
    plan = visits._jdf.queryExecution().executedPlan().toString()
    assert plan.count("FileScan") == 1
    with pytest.raises(InvalidArgumentError, match="none of the 2 expected partitions"):
        read_partitions(spark, list_partitions(tmp_path, EXPECTED[22:]), format="json")


def test_aligned_fan_in_refuses_a_day_with_a_missing_hour(
    spark: SparkSession, tmp_path: Path
) -> None:
    hourly(tmp_path, [h for h in range(24) if h != 7])
    listing = list_partitions(tmp_path, EXPECTED)
    fan_in = FanIn(
        "visits",
        PartitionParents(listing, lambda found: read_partitions(spark, found, format="json")),
    )

    with pytest.raises(TriggerRuleError) as caught:
        fan_in.run()

    assert caught.value.not_succeeded == (
        (
            "date=2024-01-01/hour=07",
            "failed",
            f"missing: no data under {tmp_path}/date=2024-01-01/hour=07",
        ),
    )


def test_unaligned_fan_in_carries_its_completeness_on_every_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    hourly(tmp_path, list(range(0, 24, 2)))
    listing = list_partitions(tmp_path, EXPECTED)
    hours = PartitionParents(listing, lambda found: read_partitions(spark, found, format="json"))
    fan_in = FanIn("visits", hours, trigger_rule="all_done", min_completeness=0.5)

    report = fan_in.run()

    assert report.completeness == 0.5
    assert report.data is not None
    flags = report.data.select("completeness", "is_approximate").distinct().collect()
    assert [tuple(r) for r in flags] == [(0.5, True)]
    assert report.data.count() == 12 * 3


def test_task_parents_run_concurrently_and_each_outcome_is_recorded(
    spark: SparkSession,
) -> None:
    together = threading.Barrier(2, timeout=60)

    def loaded(value: int) -> DataFrame:
        together.wait()  # tasks run one by one would never get past this
        return spark.createDataFrame([(value,)], "v long")

    def broken() -> DataFrame:
        raise ValueError("hour 7 is corrupt")

    def nothing_new() -> DataFrame:
        raise SkipParent("no new data for this hour")

    fan_in = FanIn(
        "tasks",
        TaskParents({"a": lambda: loaded(1), "b": lambda: loaded(2), "c": broken, "d": nothing_new,
                     "e": spark.createDataFrame([(5,)], "v long")}),
        trigger_rule="one_success",
    )  # fmt: skip
    report = fan_in.run()

    assert [(o.name, o.status) for o in report.outcomes] == [
        ("a", "success"), ("b", "success"), ("c", "failed"), ("d", "skipped"), ("e", "success"),
    ]  # fmt: skip
    assert report.outcomes[2].detail == "ValueError: hour 7 is corrupt"
    assert report.outcomes[3].detail == "no new data for this hour"
    assert report.data is not None
    assert sorted(r.v for r in report.data.collect()) == [1, 2, 5]
    assert report.completeness == 3 / 5


def test_the_fallback_runs_instead_of_the_child_when_every_parent_failed(
    spark: SparkSession,
) -> None:
    def broken() -> DataFrame:
        raise OSError("source unreachable")

    alerts: list[tuple[str, ...]] = []
    fan_in = FanIn(
        "all_down", TaskParents({"a": broken, "b": broken}), trigger_rule="one_success",
        on_not_triggered=lambda report: alerts.append(report.missing) or "alerted",
    )  # fmt: skip

    report = fan_in.run()

    assert not report.triggered
    assert report.data is None
    assert report.fallback == "alerted"
    assert alerts == [("a", "b")]


@pytest.mark.parametrize(
    ("kwargs", "error", "argument", "fragment"),
    [
        ({"name": "no spaces"}, InvalidArgumentError, "fan-in name", "not a usable name"),
        ({"parents": {"a": None}}, InvalidArgumentError, "parents", "in TaskParents({...})"),
        ({"parents": TaskParents({})}, InvalidArgumentError, "parents", "has none"),
        ({"trigger_rule": "all_sucess"}, UnknownValueError, "trigger_rule", "'all_success'?"),
        ({"min_completeness": 1.5}, InvalidArgumentError, "min_completeness", "between 0 and 1"),
        ({"min_completeness": True}, InvalidArgumentError, "min_completeness", "got True"),
        ({"max_parallel": 0}, InvalidArgumentError, "max_parallel", "integer >= 1, got 0"),
        ({"on_not_triggered": "alert"}, InvalidArgumentError, "on_not_triggered", "callable"),
        ({"source_column": ""}, InvalidArgumentError, "source_column", "name of the column"),
    ],
)
def test_a_fan_in_is_checked_when_it_is_defined(
    spark: SparkSession,
    kwargs: dict[str, object],
    error: type[SparkFlowError],
    argument: str,
    fragment: str,
) -> None:
    arguments: dict[str, object] = {
        "name": "f", "parents": TaskParents({"a": spark.range(1)}), **kwargs
    }  # fmt: skip

    with pytest.raises(error) as caught:
        FanIn(**arguments)  # type: ignore[arg-type]

    # InvalidArgumentError names the argument; UnknownValueError, the key of the choice
    assert getattr(caught.value, "argument", getattr(caught.value, "key", None)) == argument
    assert fragment in str(caught.value)


def test_the_options_of_a_fan_in_are_keyword_only(spark: SparkSession) -> None:
    with pytest.raises(TypeError):
        FanIn("f", TaskParents({"a": spark.range(1)}), "one_success")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("parents", "argument", "fragment"),
    [
        (lambda: TaskParents({"a": 42}), "tasks", "got 'a': int, which are neither"),
        (lambda: PartitionParents(list_partitions(".", [{"d": 1}]), "json"), "read", "callable"),
    ],
)
def test_each_kind_of_parents_is_checked_when_it_is_defined(
    parents: Callable[[], object], argument: str, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parents()

    assert caught.value.argument == argument
    assert fragment in str(caught.value)


def test_task_parents_keep_their_own_copy_of_the_mapping(spark: SparkSession) -> None:
    given = {"a": spark.range(1)}
    parents = TaskParents(given)

    given["b"] = spark.range(2)

    assert parents.names == ("a",)


def test_partitions_and_tasks_settle_through_the_same_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    hourly(tmp_path, [0, 1])
    listing = list_partitions(tmp_path, EXPECTED[:3])
    schema = "visit_id string, duration_ms long"
    partitions = PartitionParents(
        listing, lambda found: read_partitions(spark, found, format="json", schema=schema)
    )
    hours = ("00", "01", "02")
    tasks = TaskParents({
        hour: (lambda hour=hour: spark.read.schema(schema).json(
            str(tmp_path / "date=2024-01-01" / f"hour={hour}")))
        for hour in hours
    })  # fmt: skip

    reports = [FanIn(kind, p, trigger_rule="all_done").run() for kind, p in
               (("partitions", partitions), ("tasks", tasks))]  # fmt: skip

    by_partition, by_task = reports
    assert [o.status for o in by_partition.outcomes] == ["success", "success", "failed"]
    assert [o.status for o in by_task.outcomes] == ["success", "success", "failed"]
    assert by_partition.completeness == by_task.completeness == 2 / 3
    assert by_partition.data is not None
    assert by_task.data is not None
    assert sorted(r.visit_id for r in by_partition.data.collect()) == sorted(
        r.visit_id for r in by_task.data.collect()
    )


def test_source_column_names_each_rows_parent_however_many_succeeded(
    spark: SparkSession,
) -> None:
    def gone() -> DataFrame:
        raise OSError("gone")

    both = TaskParents({"web": spark.range(1), "app": spark.range(2)})
    one = TaskParents({"web": spark.range(1), "app": gone})

    unions = [
        FanIn("f", parents, trigger_rule="one_success", source_column="src").run().data
        for parents in (both, one)
    ]

    assert [
        sorted((r.src, r.id) for r in union.collect()) for union in unions if union is not None
    ] == [[("app", 0), ("app", 1), ("web", 0)], [("web", 0)]]


def test_a_rule_met_without_any_data_runs_the_child_with_no_input(spark: SparkSession) -> None:
    def nothing_new() -> DataFrame:
        raise SkipParent("nothing new")

    report = FanIn(
        "quiet", TaskParents({"a": nothing_new, "b": nothing_new}), trigger_rule="all_skipped"
    ).run()

    assert report.triggered
    assert report.data is None
    assert report.missing == ("a", "b")
    assert [o.detail for o in report.outcomes] == ["nothing new", "nothing new"]


def test_parent_tasks_returning_a_processing_result_are_weighed_not_unioned(
    spark: SparkSession,
) -> None:
    # Example 6-11 (Step Functions): each partition processor returns a bool, False for a
    # failed partition, and the table creator marks the table partial. A bool reached the
    # union and failed it with "'bool' object has no attribute ...".
    report = FanIn(
        "partitions",
        TaskParents(
            {"p1": lambda: True, "p2": lambda: False, "p3": lambda: spark.range(2), "p4": dict}
        ),
        trigger_rule="all_done",
    ).run()

    assert [(o.name, o.status) for o in report.outcomes] == [
        ("p1", "success"),
        ("p2", "failed"),
        ("p3", "success"),
        ("p4", "failed"),
    ]
    assert report.outcomes[1].detail == "the task returned False"
    assert "returned a dict" in (report.outcomes[3].detail or "")
    assert report.data is not None
    assert [(r.id, r.is_approximate) for r in report.data.collect()] == [(0, True), (1, True)]


def test_skip_parent_is_a_picklable_spark_flow_error() -> None:
    skipped = pickle.loads(pickle.dumps(SkipParent("no new file")))

    assert isinstance(skipped, SparkFlowError)
    assert skipped.reason == "no new file"
    assert str(skipped) == "no new file"


def test_parent_statuses_are_words_of_the_toolkits_vocabulary() -> None:
    assert set(get_args(ParentStatus)) <= set(STATUSES)
    with pytest.raises(UnknownValueError) as caught:
        ParentOutcome("a", "succeeded")  # type: ignore[arg-type]
    assert caught.value.key == "status"


def test_completeness_columns_mark_an_incomplete_input_approximate(spark: SparkSession) -> None:
    marked = spark.range(1).transform(add_completeness_columns, 0.75)
    complete = spark.range(1).transform(add_completeness_columns, 1.0)

    assert [tuple(r) for r in marked.collect()] == [(0, 0.75, True)]
    assert [tuple(r) for r in complete.collect()] == [(0, 1.0, False)]


def test_join_fan_in_prefixes_colliding_columns_with_their_parent(spark: SparkSession) -> None:
    visits = spark.createDataFrame([("p1", 10, "a")], "page string, visits long, note string")
    ads = spark.createDataFrame([("p1", 3, "b")], "page string, clicks long, note string")

    joined = join_fan_in({"visits": visits, "ads": ads}, on="page")

    assert joined.columns == ["page", "visits", "visits_note", "clicks", "ads_note"]
    assert [tuple(r) for r in joined.collect()] == [("p1", 10, "a", 3, "b")]


@pytest.mark.parametrize(
    ("on", "how", "fragment"),
    [
        ("user", "inner", "parent 'ads' lacks ['user']"),
        ("page", "cross", "how='cross' is not supported"),
    ],
)
def test_join_fan_in_refuses_missing_keys_and_unknown_joins(
    spark: SparkSession, on: str, how: str, fragment: str
) -> None:
    visits = spark.createDataFrame([("p1", "u1")], "page string, user string")
    ads = spark.createDataFrame([("p1",)], "page string")

    with pytest.raises(Exception, match=re.escape(fragment)):
        join_fan_in({"visits": visits, "ads": ads}, on=on, how=how)


def test_join_fan_in_refuses_an_ambiguous_key(spark: SparkSession) -> None:
    twice = spark.createDataFrame([("p1", "P1")], "page string, Page string")
    other = spark.createDataFrame([("p1",)], "page string")

    with pytest.raises(InvalidArgumentError, match="more than once"):
        join_fan_in({"twice": twice, "other": other}, on="page")


def test_columns_match_in_any_case_as_spark_union_by_name_does(spark: SparkSession) -> None:
    # spark.sql.caseSensitive is false by default: `Type` and `type` are one column, named as
    # its first parent has it. Two columns, each half null, were a union of nothing.
    first = spark.createDataFrame([(1, "phone")], "id long, Type string")
    second = spark.createDataFrame([("tablet", 2)], "type string, ID int")

    union = union_by_name({"first": first, "second": second}, allow_missing_columns=True)

    assert union.columns == ["id", "Type"]
    assert sorted(union.collect()) == [(1, "phone"), (2, "tablet")]


def test_a_source_column_or_a_column_twice_in_a_parent_is_refused_by_name(
    spark: SparkSession,
) -> None:
    # The chapter's union tags its parents with a `lit` column; naming the same column as
    # source_column made two columns of one name, ambiguous at the first use.
    tagged = spark.createDataFrame([(1, "dataset_1")], "id long, dataset string")
    twice = spark.createDataFrame([(1, 2)], "id long, ID long")

    with pytest.raises(InvalidArgumentError, match="'dataset' is a column of parent 'a'"):
        union_by_name({"a": tagged, "b": tagged}, source_column="Dataset")
    with pytest.raises(InvalidArgumentError, match="parent 'b' has columns 'id' and 'ID'"):
        union_by_name({"a": tagged.select("id"), "b": twice})
