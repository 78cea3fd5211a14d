"""visits_cube and visits_trends in this process on `s3://` inputs and outputs (moto).

Plain pyspark has no S3 connector: the hourly partitions and the day folders in the bucket are
read with Arrow in Python workers, the outputs go through the object-store Delta writer, and
what a run reads back (the previous day's trends, the completeness table) comes from the bucket.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _s3_tables import table_rows
from pyspark.sql import SparkSession

from spark_flow import storage
from spark_flow.generate import generate_visits
from spark_flow.jobs import load

cube_job = load("visits_cube")
trends_job = load("visits_trends")
ROWS = 6


def upload_visits(local: Path, bucket_root: str, day: str, **skip: Any) -> Counter[str]:
    """`generate_visits` of `day` under `local`, copied to `bucket_root`; visits per page."""
    pages: Counter[str] = Counter()
    for file in generate_visits(local, date=day, rows_per_hour=ROWS, **skip):
        text = file.read_text()
        pages.update(json.loads(line)["page"] for line in text.splitlines())
        storage.write_text_atomically(storage.join(bucket_root, str(file.relative_to(local))), text)
    return pages


def run_job(job: Any, spark: SparkSession, *argv: str) -> dict[str, Any]:
    report: dict[str, Any] = job.run(spark, job.parser().parse_args(list(argv))).as_dict()
    return report


def test_an_unaligned_cube_reads_the_hours_in_the_bucket_and_records_the_missing_ones(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    visits, output = f"{s3_bucket}/visits", f"{s3_bucket}/cube"
    pages = upload_visits(tmp_path, visits, "2024-01-01", skip_hours=range(3, 24))

    report = run_job(cube_job, spark, "--input", visits, "--date", "2024-01-01",
                     "--output", output, "--mode", "unaligned")  # fmt: skip

    assert report["completeness"] == 3 / 24
    assert report["missing_hours"] == [f"{h:02d}" for h in range(3, 24)]
    rows = table_rows(output, order_by="page")
    by_page = {r["page"]: r["visits"] for r in rows if r["browser"] is None and r["country"]
               is None and r["page"] is not None}  # fmt: skip
    assert by_page == dict(pages)
    assert {(r["completeness"], r["is_approximate"]) for r in rows} == {(3 / 24, True)}
    (record,) = table_rows(f"{output}/_spark_flow_completeness", order_by="logical_date")
    assert (record["present"], record["missing"]) == (3, report["missing_hours"])


def test_an_aligned_cube_of_a_whole_day_in_a_bucket_spelled_as_hadoop_does_counts_every_visit(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    # Spelled as users type them: Hadoop's s3a://, a space, a trailing slash.
    hadoop = s3_bucket.replace("s3://", "s3a://", 1)
    visits, output = f"{hadoop}/my visits/", f"{s3_bucket}/daily cube"
    pages = upload_visits(tmp_path, visits, "2024-01-01")

    report = run_job(cube_job, spark, "--input", visits, "--date", "2024-01-01",
                     "--output", output, "--mode", "aligned")  # fmt: skip

    assert (report["completeness"], report["missing_hours"]) == (1.0, [])
    (total,) = [r for r in table_rows(output, order_by="page")
                if r["page"] is None and r["browser"] is None and r["country"] is None]  # fmt: skip
    assert total["visits"] == sum(pages.values()) == 24 * ROWS
    assert report["accounting"]["rows_read"] == 24 * ROWS


def test_trends_read_the_day_folders_in_the_bucket_and_their_own_previous_day(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    visits, output = f"{s3_bucket}/visits", f"{s3_bucket}/trends"
    # Two hours a day: the folder is read whole, whatever it holds.
    first = upload_visits(tmp_path / "1", visits, "2024-01-01", skip_hours=range(2, 24))
    second = upload_visits(tmp_path / "2", visits, "2024-01-02", skip_hours=range(2, 24), seed=7)

    day_one = run_job(trends_job, spark, "--input", visits, "--date", "2024-01-01",
                      "--output", output)  # fmt: skip
    day_two = run_job(trends_job, spark, "--input", visits, "--date", "2024-01-02",
                      "--output", output)  # fmt: skip

    assert (day_one["previous_day_found"], day_two["previous_day_found"]) == (False, True)
    rows = [r for r in table_rows(output, order_by="page") if str(r["date"]) == "2024-01-02"]
    assert {r["page"]: (r["visits"], r["previous_visits"]) for r in rows} == {
        page: (second[page], first[page]) for page in first | second
    }


def test_cubes_of_three_dates_run_at_once_each_keep_their_day_in_the_bucket(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    visits, output = f"{s3_bucket}/visits", f"{s3_bucket}/cube"
    days = ("2024-01-01", "2024-01-02", "2024-01-03")
    pages = {
        day: upload_visits(tmp_path / day, visits, day, skip_hours=range(1, 24), seed=n)
        for n, day in enumerate(days)
    }

    def cube(day: str) -> dict[str, Any]:
        return run_job(cube_job, spark, "--input", visits, "--date", day, "--output", output,
                       "--mode", "unaligned")  # fmt: skip

    # As `spark-flow backfill visits_cube --max-active-runs 3` runs them: threads of one session.
    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(cube, days))

    assert [r["committed"] for r in reports] == [True] * 3
    totals = {str(r["date"]): r["visits"] for r in table_rows(output, order_by="date")
              if r["page"] is None and r["browser"] is None and r["country"] is None}  # fmt: skip
    assert totals == {day: sum(pages[day].values()) for day in days}
    records = table_rows(f"{output}/_spark_flow_completeness", order_by="logical_date")
    assert [(r["logical_date"], r["present"]) for r in records] == [(day, 1) for day in days]
