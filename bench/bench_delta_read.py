"""What reading right costs on the delta-rs backend, against the same data read plainly.

    .venv/bin/python bench/bench_delta_read.py [--rows 2000000] [--repeat 3]

Figures (median of --repeat runs, interleaved so drift hits both sides alike):
  mapped ratio     column-mapped table / the same files unmapped, delta.read + aggregate  <= 1.1
  deletions ratio  10 % of rows deleted by deletion vectors / the same files before the deletes,
                   delta.read + aggregate                                                <= 1.3
  field-id ratio   a mode-`id` table read by Parquet field id / by physical name (delta.read),
                   both listing the files from the log, + aggregate            (measured, no target)
  skipping         files scanned / files in the table, delta.read and DuckDB's delta_scan with a
                   selective filter over 20 sorted batches (written by delta.write; and by
                   deltalake)                                                            <= 0.1

Every table is a log written per the protocol (the tests' `TableBuilder`) over files of one Spark
write of the same rows, so both sides of a ratio scan alike files; the DV ratio reads the very
same files, at the version before the deletes and after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from spark_flow import delta, get_session

# The tests' protocol-level table writer: one implementation of column-mapped logs and DVs.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _delta_tables import FIELD_ID, TableBuilder
from _duckdb_reader import duckdb_files_scanned

BATCHES = 20
FIELD_ID_KEY = "parquet.field.id"
# A session conf read when the scan runs: the bench sets it for the field-id side only.
FIELD_ID_READ_CONF = "spark.sql.parquet.fieldId.read.enabled"
FIELDS = [("id", "long"), ("name", "string"), ("value", "double")]


def source(spark: SparkSession, rows: int) -> DataFrame:
    return spark.range(rows).select(
        F.col("id"),
        F.concat(F.lit("device-"), (F.col("id") % 10_000).cast("string")).alias("name"),
        (F.col("id") * 0.37).alias("value"),
    )


def aggregate(df: DataFrame) -> list[object]:
    return df.groupBy((F.col("id") % 100).alias("bucket")).agg(F.sum("value")).collect()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def files_of(folder: Path) -> list[tuple[str, int]]:
    """(relative path, rows) of the Parquet files Spark wrote into `folder`."""
    return [
        (file.relative_to(folder).as_posix(), pq.read_metadata(file).num_rows)
        for file in sorted(folder.rglob("*.parquet"))
    ]


def add_action(root: Path, relative: str, rows: int) -> dict[str, object]:
    size = (root / relative).stat().st_size
    stats = json.dumps({"numRecords": rows})
    return {"add": {"path": relative, "partitionValues": {}, "size": size,
                    "modificationTime": 0, "dataChange": True, "stats": stats}}  # fmt: skip


def plain_table(df: DataFrame, root: Path) -> None:
    """The data of `df` in a table without mapping or DVs, its files written as the others'."""
    table = TableBuilder(root, FIELDS)
    df.write.parquet(str(root / "data"))
    table.commit(*(add_action(root, f"data/{p}", n) for p, n in files_of(root / "data")))


def mapped_table(df: DataFrame, root: Path) -> None:
    """The data of `df` in a column-mapped table (mode name): files store `col-<uuid>` names."""
    table = TableBuilder(root, FIELDS, mapping="name")
    df.toDF(*(table.physical(name) for name, _ in FIELDS)).write.parquet(str(root / "data"))
    table.commit(*(add_action(root, f"data/{p}", n) for p, n in files_of(root / "data")))


def id_mapped_table(df: DataFrame, root: Path) -> StructType:
    """The data of `df` in a table mapped by id; the logical schema carrying the field ids.

    Spark writes a column's `parquet.field.id` metadata as the Parquet field id.
    """
    table = TableBuilder(root, FIELDS, mapping="id")
    ids = {f["name"]: f["metadata"][FIELD_ID] for f in table.schema["fields"]}
    df.select(
        *(F.col(n).alias(table.physical(n), metadata={FIELD_ID_KEY: ids[n]}) for n, _ in FIELDS)
    ).write.parquet(str(root / "data"))
    table.commit(*(add_action(root, f"data/{p}", n) for p, n in files_of(root / "data")))
    return StructType(
        [StructField(f.name, f.dataType, True, {FIELD_ID_KEY: ids[f.name]}) for f in df.schema]
    )


def read_by_field_id(spark: SparkSession, root: Path, schema: StructType) -> DataFrame:
    """The table's files (listed from the log), matched to the logical `schema` by field id."""
    files = DeltaTable(str(root)).file_uris()
    spark.conf.set(FIELD_ID_READ_CONF, "true")
    return spark.read.schema(schema).parquet(*files)


def deleted_table(df: DataFrame, root: Path) -> int:
    """The data of `df` with every 10th row of each file deleted by an inline DV.

    Returns the version before the deletes: the very same files, read without DVs.
    """
    table = TableBuilder(root, FIELDS, deletion_vectors=True)
    df.write.parquet(str(root / "data"))
    adds = [add_action(root, f"data/{p}", n) for p, n in files_of(root / "data")]
    before = table.commit(*adds)
    deletes = []
    for add, (_, rows) in zip(adds, files_of(root / "data"), strict=True):
        deletes += table.delete(add, list(range(0, rows, 10)), inline=True)
    table.commit(*deletes)
    return before


def median_pair(
    repeat: int, first: Callable[[], object], second: Callable[[], object]
) -> tuple[float, float]:
    a, b = [], []
    for i in range(repeat):
        steps = [(a, first), (b, second)]
        for figures, step in steps if i % 2 == 0 else steps[::-1]:
            figures.append(timed(step))
    return statistics.median(a), statistics.median(b)


def skipping(spark: SparkSession, rows: int, table: str, *, writer: str) -> dict[str, object]:
    """Files scanned / files in the table for a filter matching one batch's range.

    `writer` is `spark_flow` (delta.write) or `deltalake` (write_deltalake), which writes
    min/max statistics whatever spark_flow's writer does.
    """
    per_batch = rows // BATCHES
    for batch in range(BATCHES):
        data = source(spark, per_batch).withColumn("id", F.col("id") + batch * per_batch)
        if writer == "spark_flow":
            delta.write(data.coalesce(1), table)
        else:
            write_deltalake(table, data.toArrow(), mode="append")
    predicate = f"id >= {3 * per_batch} AND id < {3 * per_batch + 10}"
    frame = delta.read(spark, table, filter=predicate)
    scanned, total = len(frame.inputFiles()), len(DeltaTable(table).file_uris())
    duckdb_scanned, _ = duckdb_files_scanned(table, predicate)
    return {"predicate": predicate, "files_scanned": scanned, "files_in_table": total,
            "matching_rows": frame.count(), "files_ratio": scanned / total,
            "duckdb_files_scanned": duckdb_scanned,
            "duckdb_files_ratio": duckdb_scanned / total}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta_read.json"))
    args = parser.parse_args()

    spark = get_session(
        "bench-delta-read", conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"}
    )
    work = Path(tempfile.mkdtemp(prefix="bench-delta-read-"))
    df = source(spark, args.rows)
    try:
        plain, mapped, deleted = str(work / "plain"), work / "mapped", work / "deleted"
        plain_table(df, Path(plain))
        mapped_table(df, mapped)
        by_id = work / "by_id"
        id_schema = id_mapped_table(df, by_id)
        undeleted = deleted_table(df, deleted)
        aggregate(delta.read(spark, plain))  # JIT and Python workers warm for both sides
        plain_s, mapped_s = median_pair(
            args.repeat,
            lambda: aggregate(delta.read(spark, plain)),
            lambda: aggregate(delta.read(spark, str(mapped))),
        )
        plain_again_s, deleted_s = median_pair(  # the same files, before and after the deletes
            args.repeat,
            lambda: aggregate(delta.read(spark, str(deleted), version=undeleted)),
            lambda: aggregate(delta.read(spark, str(deleted))),
        )

        def by_name() -> object:
            spark.conf.unset(FIELD_ID_READ_CONF)
            return sorted(aggregate(delta.read(spark, str(by_id))))

        def by_field_id() -> object:
            return sorted(aggregate(read_by_field_id(spark, by_id, id_schema)))

        assert by_name() == by_field_id()  # the same rows, or the figure means nothing
        name_s, field_id_s = median_pair(args.repeat, by_name, by_field_id)
        spark.conf.unset(FIELD_ID_READ_CONF)
        skipped = skipping(spark, args.rows, str(work / "ours"), writer="spark_flow")
        skipped_deltalake = skipping(spark, args.rows, str(work / "theirs"), writer="deltalake")
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    figures = {
        "rows": args.rows,
        "plain_s": plain_s,
        "mapped_s": mapped_s,
        "mapped_ratio": mapped_s / plain_s,
        "plain_again_s": plain_again_s,
        "deleted_s": deleted_s,
        "deleted_ratio": deleted_s / plain_again_s,
        "by_physical_name_s": name_s,
        "by_field_id_s": field_id_s,
        "field_id_ratio": field_id_s / name_s,
        "skipping": skipped,
        "skipping_deltalake_written": skipped_deltalake,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                         {args.rows:,} (long, string, double), local[2]")
    print(f"column-mapped / plain        {figures['mapped_ratio']:.3f}   "
          f"({mapped_s:.2f} s / {plain_s:.2f} s, target <= 1.1)")  # fmt: skip
    print(f"10 % deleted by DVs / plain  {figures['deleted_ratio']:.3f}   "
          f"({deleted_s:.2f} s / {plain_again_s:.2f} s, target <= 1.3)")  # fmt: skip
    print(f"by field id / by phys. name  {figures['field_id_ratio']:.3f}   "
          f"({field_id_s:.2f} s / {name_s:.2f} s, mode-id table, measured)")  # fmt: skip
    for name, found in [("spark_flow", skipped), ("deltalake", skipped_deltalake)]:
        print(f"files scanned / in table     {found['files_scanned']} / {found['files_in_table']}"
              f" = {found['files_ratio']:.3f}   (target <= 0.1), written by {name}")  # fmt: skip
        print(f"  DuckDB delta_scan          {found['duckdb_files_scanned']} / "
              f"{found['files_in_table']} = {found['duckdb_files_ratio']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
