"""delta-spark's read and write options on the delta-rs backend: honoured, or refused by name.

Code moved from the connector keeps its options. Ignored, `timestampAsOf` would read the latest
version, `readChangeFeed` the table instead of its changes, and `replaceWhere` would replace
the whole table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import _delta_logs as logs
import pytest
from _sessions import time_zone
from deltalake import DeltaTable
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_flow import delta, enable_delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.testing import assert_df_equal

T0 = datetime(2024, 1, 31, 10, 0, tzinfo=timezone.utc)


def _stamp(table: str, version: int, moment: datetime) -> None:
    """Give commit `version` the modification time `moment`, as its writer's clock would."""
    os.utime(logs.commit_file(table, version), (moment.timestamp(), moment.timestamp()))


@pytest.fixture
def history(tmp_path: Path) -> str:
    """Versions 0, 1, 2 (one row each, `id` = version) committed at T0, T0+1h, T0+2h."""
    table = logs.table(tmp_path / "history")
    for version in range(3):
        _stamp(table, version, T0 + timedelta(hours=version))
    return table


@pytest.fixture
def utc_session(spark: SparkSession) -> Iterator[SparkSession]:
    with time_zone(spark, "UTC") as session:
        yield session


def _ids(spark: SparkSession, table: str, stamp: str) -> list[int]:
    frame = spark.read.format("delta").option("timestampAsOf", stamp).load(table)
    return sorted(row.id for row in frame.collect())


@pytest.mark.parametrize(
    ("stamp", "ids"),
    [
        ("2024-01-31T10:00:00Z", [0]),  # exactly the first commit
        ("2024-01-31T10:59:59.999Z", [0]),  # between two commits: the earlier one
        ("2024-01-31 11:00:00+00:00", [0, 1]),
        ("2024-01-31T13:30:00+02:00", [0, 1]),  # 11:30 UTC: the offset counts
        ("2024-01-31T12:00:00Z", [0, 1, 2]),  # exactly the latest commit
    ],
)
def test_timestamp_as_of_reads_the_version_current_then(
    spark: SparkSession, history: str, stamp: str, ids: list[int]
) -> None:
    assert _ids(spark, history, stamp) == ids


def test_delta_read_takes_a_datetime_a_date_or_a_string_in_the_session_zone(
    utc_session: SparkSession, history: str
) -> None:
    spark = utc_session
    at_11 = datetime(2024, 1, 31, 11, 30)  # naive: the session's zone, UTC
    assert delta.read(spark, history, timestamp=at_11).count() == 2
    assert delta.read(spark, history, timestamp="2024-01-31 12:00:00").count() == 3
    with pytest.raises(InvalidArgumentError, match="before the earliest version"):
        delta.read(spark, history, timestamp=date(2024, 1, 31))  # midnight, before any commit
    with time_zone(spark, "Asia/Tokyo"):  # 20:30 in Tokyo is 11:30 UTC
        assert delta.read(spark, history, timestamp="2024-01-31 20:30:00").count() == 2


def test_format_delta_reads_a_zoneless_timestamp_in_the_session_zone(
    spark: SparkSession, history: str
) -> None:
    # Spark gives a Python data source no session setting: the zone comes with its registration
    # (get_session, enable_delta, every delta.read/write), not from its process's clock.
    try:
        with time_zone(spark, "Asia/Tokyo"):
            enable_delta(spark)
            assert _ids(spark, history, "2024-01-31 20:30:00") == [0, 1]  # 11:30 UTC
    finally:
        enable_delta(spark)  # registered again in the zone restored


def test_timestamps_outside_the_commits_and_two_points_in_time_are_refused(
    spark: SparkSession, history: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="after the latest commit"):
        delta.read(spark, history, timestamp=T0 + timedelta(days=1))
    with pytest.raises(PySparkException, match="before the earliest version"):
        _ids(spark, history, "2024-01-31T09:00:00Z")
    with pytest.raises(InvalidArgumentError, match="either the version or the timestamp"):
        delta.read(spark, history, version=1, timestamp=T0)
    with pytest.raises(PySparkException, match="either versionAsOf or timestampAsOf"):
        spark.read.format("delta").option("versionAsOf", 1).option(
            "timestampAsOf", "2024-01-31T10:00:00Z"
        ).load(history).collect()
    with pytest.raises(InvalidArgumentError, match="expected an ISO date or timestamp"):
        delta.read(spark, history, timestamp="yesterday")


def test_a_commit_whose_file_looks_older_counts_as_just_after_its_predecessor(
    spark: SparkSession, history: str
) -> None:
    # A writer with a slow clock: version 2's file is older than version 1's. Delta reads it
    # as one millisecond after version 1, so time only moves forward.
    _stamp(history, 2, T0 + timedelta(minutes=30))
    assert _ids(spark, history, "2024-01-31T11:00:00Z") == [0, 1]
    assert _ids(spark, history, "2024-01-31T11:00:00.001Z") == [0, 1, 2]


def test_in_commit_timestamps_decide_where_the_table_keeps_them(
    spark: SparkSession, history: str
) -> None:
    # From version 1 on the table keeps in-commit timestamps, a day after its files' times.
    logs.set_metadata(
        history,
        configuration={
            "delta.enableInCommitTimestamps": "true",
            "delta.inCommitTimestampEnablementVersion": "1",
        },
    )
    day = T0 + timedelta(days=1)
    for version in (1, 2):
        stamp = int((day + timedelta(hours=version)).timestamp() * 1000)
        info = {"commitInfo": {"timestamp": stamp, "inCommitTimestamp": stamp}}
        # The protocol puts the commitInfo of an in-commit timestamp first.
        logs.rewrite(
            history, version, lambda found, i=info: [i, *logs.without("commitInfo")(found)]
        )
    for version in range(3):  # the rewrites touched the files: their times as before
        _stamp(history, version, T0 + timedelta(hours=version))

    assert _ids(spark, history, "2024-01-31T23:00:00Z") == [0]  # file time of 1 passed; ICT not
    assert _ids(spark, history, "2024-02-01T11:00:00Z") == [0, 1]
    assert _ids(spark, history, "2024-02-01T12:00:00Z") == [0, 1, 2]


def test_change_data_feed_reads_are_refused_not_answered_with_the_table(
    spark: SparkSession, history: str
) -> None:
    for option, value in [("readChangeFeed", "true"), ("startingVersion", "0")]:
        with pytest.raises(PySparkException, match=f"does not support .*{option}"):
            spark.read.format("delta").option(option, value).load(history).collect()


@pytest.fixture
def by_country(spark: SparkSession, tmp_delta_path: str) -> str:
    rows = [(1, "fr"), (2, "de"), (3, "fr"), (4, "it")]
    delta.write(
        spark.createDataFrame(rows, "id long, country string"),
        tmp_delta_path,
        partition_by=["country"],
    )
    return tmp_delta_path


def test_replace_where_on_partitions_replaces_only_them(
    spark: SparkSession, by_country: str
) -> None:
    new = spark.createDataFrame([(9, "fr")], "id long, country string")
    new.write.format("delta").mode("overwrite").option("replaceWhere", "country = 'fr'").save(
        by_country
    )

    expected = [(2, "de"), (4, "it"), (9, "fr")]
    assert_df_equal(
        delta.read(spark, by_country), spark.createDataFrame(expected, "id long, country string")
    )


@pytest.mark.parametrize(
    ("mode", "options", "error"),
    [
        ("overwrite", {"replaceWhere": "id > 2"}, "replaceWhere names partitions"),
        ("overwrite", {"replaceWhere": "country = 'fr' OR country = 'de'"}, "replaceWhere"),
        ("append", {"replaceWhere": "country = 'fr'"}, "only an overwrite does"),
        ("overwrite", {"partitionOverwriteMode": "by-day"}, "expected 'static' or 'dynamic'"),
        ("append", {"dataChange": "false"}, "dataChange=false"),
    ],
)
def test_options_this_backend_cannot_honour_fail_and_leave_the_table_as_it_was(
    spark: SparkSession, by_country: str, mode: str, options: dict[str, str], error: str
) -> None:
    before = delta.read(spark, by_country).collect()
    new = spark.createDataFrame([(9, "fr")], "id long, country string")

    with pytest.raises(PySparkException, match=error):
        new.write.format("delta").mode(mode).options(**options).save(by_country)

    assert sorted(delta.read(spark, by_country).collect()) == sorted(before)
    assert delta.table_info(by_country).version == 0  # type: ignore[union-attr]


def test_a_read_without_a_location_says_how_to_give_one(spark: SparkSession) -> None:
    with pytest.raises(PySparkException, match=r"got no table location.*\.load\(path\)"):
        spark.read.format("delta").load().collect()


def test_overwrite_schema_replaces_columns_and_keeps_the_old_version_readable(
    spark: SparkSession, by_country: str
) -> None:
    new = spark.createDataFrame([("fr", 1.5), ("de", 2.5)], "country string, score double")

    new.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(by_country)

    info = delta.table_info(by_country)
    assert info is not None
    assert info.partition_columns == ("country",)  # still there, so still partitioned by it
    assert_df_equal(delta.read(spark, by_country), new)
    assert DeltaTable(by_country).schema().to_arrow().names == ["country", "score"]
    assert delta.read(spark, by_country, version=0).columns == ["id", "country"]


def test_overwrite_schema_keeps_the_partitioning_and_refuses_data_without_its_columns(
    spark: SparkSession, by_country: str
) -> None:
    retyped = spark.createDataFrame([("1", "fr")], "id string, country string")
    delta.write(retyped, by_country, mode="overwrite", overwrite_schema=True)
    assert_df_equal(delta.read(spark, by_country), retyped)

    scores = spark.createDataFrame([(1, 1.5)], "id long, score double")
    with pytest.raises(InvalidArgumentError, match=r"partitioned by \['country'\].*lacks"):
        delta.write(scores, by_country, mode="overwrite", overwrite_schema=True)
    with pytest.raises(InvalidArgumentError, match="partitioned by"):
        delta.write(
            retyped, by_country, mode="overwrite", overwrite_schema=True, partition_by=["id"]
        )
    assert delta.table_info(by_country).version == 1  # type: ignore[union-attr]
    assert_df_equal(delta.read(spark, by_country), retyped)


def test_overwrite_schema_is_refused_where_it_would_replace_only_part_of_the_table(
    spark: SparkSession, by_country: str
) -> None:
    new = spark.createDataFrame([("fr", 1.5)], "country string, score double")
    with pytest.raises(InvalidArgumentError, match="overwrite_schema: it replaces the schema"):
        delta.write(new, by_country, overwrite_schema=True)  # an append
    with pytest.raises(InvalidArgumentError, match="which replace_where does not replace"):
        delta.write(
            new,
            by_country,
            mode="overwrite",
            replace_where={"country": "fr"},
            overwrite_schema=True,
        )


def test_versions_log_cleanup_removed_are_before_the_earliest_timestamp(
    spark: SparkSession, tmp_path: Path
) -> None:
    table = logs.table(tmp_path / "cleaned", commits=4)
    DeltaTable(table).create_checkpoint()  # at version 3; commits 0-2 then cleaned up
    for version in range(4):
        _stamp(table, version, T0 + timedelta(hours=version))
    for version in range(3):
        logs.commit_file(table, version).unlink()

    with pytest.raises(InvalidArgumentError, match=r"earliest version .* \(version 3, committed"):
        delta.read(spark, table, timestamp=T0 + timedelta(hours=2))
    assert delta.read(spark, table, timestamp=T0 + timedelta(hours=3)).count() == 4


REGIONS = "id long, day date, region string"


@pytest.fixture
def by_day_and_region(spark: SparkSession, tmp_delta_path: str) -> str:
    rows = [(1, date(2024, 1, 1), "eu"), (2, date(2024, 1, 1), "us"), (3, date(2024, 1, 2), "eu"),
            (4, date(2024, 1, 3), None)]  # fmt: skip
    delta.write(
        spark.createDataFrame(rows, REGIONS), tmp_delta_path, partition_by=["day", "region"]
    )
    return tmp_delta_path


def _kept_ids(spark: SparkSession, table: str) -> list[int]:
    return sorted(row.id for row in delta.read(spark, table).collect())


def test_dynamic_partition_overwrite_replaces_only_the_partitions_the_data_has(
    spark: SparkSession, by_day_and_region: str
) -> None:
    # (2024-01-01, eu) and (2024-01-02, us): not every day with every region of the two.
    new = [(10, date(2024, 1, 1), "eu"), (11, date(2024, 1, 2), "us"), (12, date(2024, 1, 3), None)]
    first = delta.write(
        spark.createDataFrame(new, REGIONS), by_day_and_region, mode="overwrite",
        dynamic_partitions=True, app_id="daily", txn_version=1,
    )  # fmt: skip
    replay = delta.write(
        spark.createDataFrame(new, REGIONS), by_day_and_region, mode="overwrite",
        dynamic_partitions=True, app_id="daily", txn_version=1,
    )  # fmt: skip

    assert (first.committed, replay.committed) == (True, False)
    assert _kept_ids(spark, by_day_and_region) == [2, 3, 10, 11, 12]


def test_the_connector_option_replaces_the_partitions_the_data_has(
    spark: SparkSession, by_day_and_region: str
) -> None:
    new = spark.createDataFrame([(10, date(2024, 1, 2), "eu")], REGIONS)
    new.write.format("delta").mode("overwrite").option("partitionOverwriteMode", "dynamic").save(
        by_day_and_region
    )
    assert _kept_ids(spark, by_day_and_region) == [1, 2, 4, 10]


def test_dynamic_partition_overwrite_of_an_unpartitioned_table_replaces_it(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.range(3), tmp_delta_path)
    delta.write(spark.range(5, 6), tmp_delta_path, mode="overwrite", dynamic_partitions=True)
    assert [r.id for r in delta.read(spark, tmp_delta_path).collect()] == [5]
    with pytest.raises(InvalidArgumentError, match="dynamic_partitions: it replaces"):
        delta.write(spark.range(1), tmp_delta_path, dynamic_partitions=True)  # an append


def _run_until_done(query: StreamingQuery) -> None:
    try:
        query.processAllAvailable()
    finally:
        query.stop()


def test_stream_reads_through_format_delta_are_refused_with_the_way_that_works(
    spark: SparkSession, history: str
) -> None:
    reading = spark.readStream.format("delta").load(history).writeStream.format("noop").start()
    with pytest.raises(PySparkException, match="streaming reads of format"):
        _run_until_done(reading)
