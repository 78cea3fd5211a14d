"""The postgres output against Spark's own JDBC writer, measured side by side in one run.

    .venv/bin/python bench/bench_postgres.py [--rows 1000000] [--repeat 3]

Both write the same generated DataFrame into a fresh table of a throwaway local server
(`spark_flow.postgres.local`), `local[2]`, 2 partitions. The baseline is the plain
`df.write.jdbc(..., mode="append")` with Debian's driver JAR (`libpostgresql-jdbc-java`,
`/usr/share/java/postgresql.jar`; `make bench` installs it): per-partition commits, no
exactly-once guarantee.

Figures (median of --repeat runs, interleaved so drift hits both sides alike):
  write ratio     output_writer("postgres").write / df.write.jdbc      target <= 1.2
  publish share   the exactly-once transaction (claim the batch, move the staged rows)
                  / the whole write
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import get_session
from spark_flow.postgres import PostgresOutput
from spark_flow.postgres.local import LocalPostgres

JDBC_JAR = Path("/usr/share/java/postgresql.jar")


class PublishTimes(logging.Handler):
    """Collects the copy and publish seconds the writer logs with each committed batch."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.copy: list[float] = []
        self.publish: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "publish_seconds"):
            self.copy.append(record.copy_seconds)
            self.publish.append(record.publish_seconds)


def source(spark: SparkSession, rows: int) -> DataFrame:
    """rows x (long, string, double, timestamp), as bench_delta.py, in 2 partitions."""
    return spark.range(rows, numPartitions=2).select(
        F.col("id"),
        F.concat(F.lit("device-"), (F.col("id") % 10_000).cast("string")).alias("name"),
        (F.col("id") * 0.37).alias("value"),
        F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id") % 86_400).alias("ts"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/postgres.json"))
    args = parser.parse_args()
    if not JDBC_JAR.is_file():
        raise SystemExit(f"{JDBC_JAR} is missing: apt-get install libpostgresql-jdbc-java")

    times = PublishTimes()
    logging.getLogger("spark_flow.postgres").addHandler(times)
    logging.getLogger("spark_flow.postgres").setLevel(logging.INFO)
    with LocalPostgres() as server:
        os.environ["PGPASSWORD"] = server.password
        spark = get_session(
            "bench-postgres",
            conf={
                "spark.master": "local[2]",
                "spark.sql.shuffle.partitions": "2",
                "spark.jars": str(JDBC_JAR),
            },
        )
        url = f"jdbc:postgresql://127.0.0.1:{server.port}/{server.dbname}"
        properties = {"user": server.user, "password": server.password,
                      "driver": "org.postgresql.Driver"}  # fmt: skip
        writer = PostgresOutput(settings=server.settings())
        df = source(spark, args.rows)
        ours, jdbc = [], []
        try:
            small = source(spark, 10_000)  # JIT, Python workers and the driver JAR warm
            small.write.jdbc(url, "warm_jdbc", mode="append", properties=properties)
            writer.write(small, "warm_ours", app_id="bench", txn_version=0)
            times.copy.clear()
            times.publish.clear()
            for i in range(args.repeat):
                steps = [
                    (jdbc, lambda i=i: df.write.jdbc(url, f"jdbc_{i}", "append", properties)),
                    (ours, lambda i=i: writer.write(df, f"ours_{i}", app_id="b", txn_version=i)),
                ]
                for figures, step in steps if i % 2 == 0 else steps[::-1]:
                    started = time.perf_counter()
                    step()
                    figures.append(time.perf_counter() - started)
        finally:
            spark.stop()

    figures = {
        "rows": args.rows,
        "ours_s": statistics.median(ours),
        "jdbc_s": statistics.median(jdbc),
        "write_ratio": statistics.median(ours) / statistics.median(jdbc),
        "copy_s": statistics.median(times.copy),
        "publish_s": statistics.median(times.publish),
        "publish_share": statistics.median(p / o for p, o in zip(times.publish, ours, strict=True)),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                        {args.rows:,} (long, string, double, timestamp), local[2]")
    print(
        f"seconds (median)            postgres output {figures['ours_s']:.2f} "
        f"(copy {figures['copy_s']:.2f}, publish {figures['publish_s']:.2f}), "
        f"df.write.jdbc {figures['jdbc_s']:.2f}"
    )
    print(f"write  ours / jdbc          {figures['write_ratio']:.3f}   (target <= 1.2)")
    print(f"publish share of the write  {figures['publish_share']:.3f}")


if __name__ == "__main__":
    main()
