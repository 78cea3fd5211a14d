"""Fan-in: name-based unions, partitions read in one scan, tasks, rules, completeness."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_flow.errors import InvalidArgumentError, SchemaMismatchError, TriggerRuleError
from spark_flow.fan_in import (
    FanIn,
    ParentSkipped,
    join_fan_in,
    list_partitions,
    read_partitions,
    union_by_name,
)
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
    fan_in = FanIn.from_partitions(
        "visits", listing, lambda found: read_partitions(spark, found, format="json")
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
    fan_in = FanIn.from_partitions(
        "visits", listing, lambda found: read_partitions(spark, found, format="json"),
        trigger_rule="all_done", min_completeness=0.5,
    )  # fmt: skip

    result = fan_in.run()

    assert result.completeness == 0.5
    assert result.data is not None
    flags = result.data.select("completeness", "is_approximate").distinct().collect()
    assert [tuple(r) for r in flags] == [(0.5, True)]
    assert result.data.count() == 12 * 3


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
        raise ParentSkipped("no new data for this hour")

    fan_in = FanIn(
        "tasks",
        {"a": lambda: loaded(1), "b": lambda: loaded(2), "c": broken, "d": nothing_new,
         "e": spark.createDataFrame([(5,)], "v long")},
        trigger_rule="one_success",
    )  # fmt: skip
    result = fan_in.run()

    assert [(o.name, o.status) for o in result.outcomes] == [
        ("a", "success"), ("b", "success"), ("c", "failed"), ("d", "skipped"), ("e", "success"),
    ]  # fmt: skip
    assert result.outcomes[2].detail == "ValueError: hour 7 is corrupt"
    assert result.outcomes[3].detail == "no new data for this hour"
    assert result.data is not None
    assert sorted(r.v for r in result.data.collect()) == [1, 2, 5]
    assert result.completeness == 3 / 5


def test_the_fallback_runs_instead_of_the_child_when_every_parent_failed(
    spark: SparkSession,
) -> None:
    def broken() -> DataFrame:
        raise OSError("source unreachable")

    alerts: list[tuple[str, ...]] = []
    fan_in = FanIn(
        "all_down", {"a": broken, "b": broken}, trigger_rule="one_success",
        on_not_triggered=lambda result: alerts.append(result.missing) or "alerted",
    )  # fmt: skip

    result = fan_in.run()

    assert not result.triggered
    assert result.data is None
    assert result.fallback == "alerted"
    assert alerts == [("a", "b")]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"parents": {}}, "has none"),
        ({"trigger_rule": "all_sucess"}, "Did you mean 'all_success'"),
        ({"min_completeness": 1.5}, "between 0 and 1"),
    ],
)
def test_a_fan_in_is_checked_when_it_is_defined(
    spark: SparkSession, kwargs: dict[str, object], fragment: str
) -> None:
    arguments: dict[str, object] = {"parents": {"a": spark.range(1)}, **kwargs}
    with pytest.raises(Exception, match=fragment):
        FanIn("f", **arguments)  # type: ignore[arg-type]


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
