"""Parallel Split: persist-once split vs naive branches that each re-read the input, one run.

    .venv/bin/python bench/bench_fan_out.py [--rows 500000] [--repeat 3]

Input: JSON lines parsed by a Python data source (`counted_json`, json.loads per line: a costly
parse, and one Spark cannot prune or push filters into, so every read is a full read). Each
partition it reads leaves a file in a log folder, which counts the scans exactly. Three branches
write Delta tables: every row, a filtered and enriched subset, a per-type aggregate. Figures:
  naive / split   end-to-end time of the naive version over the split's     target >= 2
  scans           full reads of the input per version                       split 1, naive 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from spark_flow import delta, get_session
from spark_flow.fan_out import Branch, ParallelSplit

PAYLOAD = "temperature DOUBLE, battery INT, firmware STRING, tags ARRAY<STRING>, owner STRING"
SCHEMA = "id BIGINT, type STRING, full_name STRING, version STRING, payload STRING"


def generate(spark: SparkSession, rows: int, folder: str) -> None:
    payload = F.to_json(
        F.struct(
            (F.col("id") % 400 / 10).alias("temperature"),
            (F.col("id") % 100).cast("int").alias("battery"),
            F.concat(F.lit("fw-"), (F.col("id") % 37).cast("string")).alias("firmware"),
            F.array(
                F.lit("indoor"), F.concat(F.lit("zone-"), (F.col("id") % 9).cast("string"))
            ).alias("tags"),
            F.concat(F.lit("user-"), (F.col("id") % 5000).cast("string")).alias("owner"),
        )
    )
    spark.range(0, rows, numPartitions=4).select(
        F.col("id"),
        F.element_at(
            F.array(*(F.lit(t) for t in ("galaxy", "iphone", "pixel"))),
            (F.col("id") % 3 + 1).cast("int"),
        ).alias("type"),
        F.concat(F.lit("device model "), F.col("id").cast("string")).alias("full_name"),
        F.concat(F.lit("v"), (F.col("id") % 12).cast("string")).alias("version"),
        payload.alias("payload"),
    ).write.json(folder)


class CountedJson(DataSource):
    """JSON lines parsed in Python, one partition per file; each partition read is logged."""

    @classmethod
    def name(cls) -> str:
        return "counted_json"

    def schema(self) -> str:
        return f"id BIGINT, type STRING, full_name STRING, version STRING, {PAYLOAD}"

    def reader(self, schema: StructType) -> DataSourceReader:
        return CountedJsonReader(self.options["path"], self.options["log"])


class CountedJsonReader(DataSourceReader):
    def __init__(self, path: str, log: str) -> None:
        self.files = sorted(str(p) for p in Path(path).glob("*.json"))
        self.log = log

    def partitions(self) -> list[InputPartition]:
        return [InputPartition(file) for file in self.files]

    def read(self, partition: InputPartition):  # untyped: an iterator of tuples
        import json
        import uuid
        from pathlib import Path

        Path(self.log, uuid.uuid4().hex).touch()
        with open(partition.value) as handle:
            for line in handle:
                d = json.loads(line)
                p = json.loads(d["payload"])
                yield (
                    d["id"], d["type"], d["full_name"], d["version"],
                    p["temperature"], p["battery"], p["firmware"], p["tags"], p["owner"],
                )  # fmt: skip


def parsed(spark: SparkSession, folder: str, log: str) -> DataFrame:
    return spark.read.format("counted_json").option("path", folder).option("log", log).load()


def branches(out: str) -> list[Branch]:
    return [
        Branch("raw", f"{out}/raw"),
        Branch(
            "hot",
            f"{out}/hot",
            lambda df: df.filter("temperature > 30").withColumn("loaded_at", F.current_timestamp()),
        ),
        Branch(
            "per_type",
            f"{out}/per_type",
            lambda df: df.groupBy("type", "firmware").agg(
                F.count("*").alias("devices"), F.avg("battery").alias("battery")
            ),
        ),
    ]


def run_split(spark: SparkSession, source: DataFrame, out: str, batch: int) -> None:
    ParallelSplit("bench", branches(out)).run(source, txn_version=batch)


def run_split_serialized(spark: SparkSession, source: DataFrame, out: str, batch: int) -> None:
    """The split with PySpark's MEMORY_AND_DISK, which is the serialized level (its old default)."""
    split = ParallelSplit("bench", branches(out), storage_level=StorageLevel.MEMORY_AND_DISK)
    split.run(source, txn_version=batch)


def run_naive(spark: SparkSession, source: DataFrame, out: str, batch: int) -> None:
    for branch in branches(out):  # each write plans the source again and re-reads the JSON
        delta.write(branch.transform(source), branch.output, app_id=branch.name, txn_version=batch)


def full_reads(log: Path, folder: str) -> float:
    """Partitions read, in whole reads of the input (one partition per file); clears the log."""
    reads = len(list(log.iterdir())) / len(list(Path(folder).glob("*.json")))
    for entry in log.iterdir():
        entry.unlink()
    return reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/fan_out.json"))
    args = parser.parse_args()
    spark = get_session(
        "bench-fan-out", conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"}
    )
    work = tempfile.mkdtemp(prefix="bench-fan-out-")
    try:
        spark.dataSource.register(CountedJson)
        log = Path(work, "reads")
        log.mkdir()
        generate(spark, args.rows, f"{work}/input")
        generate(spark, 20_000, f"{work}/small")
        run_split(spark, parsed(spark, f"{work}/small", str(log)), f"{work}/warm", 1)  # warm-up
        full_reads(log, f"{work}/small")
        runners = {"split": run_split, "naive": run_naive, "serialized": run_split_serialized}
        times: dict[str, list[float]] = {name: [] for name in runners}
        reads: dict[str, list[float]] = {name: [] for name in runners}
        for attempt in range(args.repeat):
            order = list(runners)[:: 1 if attempt % 2 == 0 else -1]
            for name in order:
                out = f"{work}/{name}-{attempt}"
                started = time.perf_counter()
                runners[name](spark, parsed(spark, f"{work}/input", str(log)), out, attempt + 1)
                times[name].append(time.perf_counter() - started)
                reads[name].append(full_reads(log, f"{work}/input"))
                shutil.rmtree(out)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    split, naive = statistics.median(times["split"]), statistics.median(times["naive"])
    serialized = statistics.median(times["serialized"])
    figures = {
        "rows": args.rows,
        "branches": 3,
        "split_s": split,
        "naive_s": naive,
        "naive_over_split": naive / split,
        "serialized_split_s": serialized,
        "serialized_over_deserialized": serialized / split,
        "runs_s": times,
        "scans": {name: max(counts) for name, counts in reads.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                   {args.rows:,} JSON lines, 3 Delta branches, local[2]")
    print(f"seconds (median of {args.repeat})  split {split:.2f}, naive {naive:.2f}")
    print(f"naive / split          {naive / split:.2f}   (target >= 2)")
    print(f"input scans            split {max(reads['split']):g}, naive {max(reads['naive']):g}")
    print(f"cache MEMORY_AND_DISK (serialized) / MEMORY_AND_DISK_DESER  {serialized / split:.2f}")


if __name__ == "__main__":
    main()
