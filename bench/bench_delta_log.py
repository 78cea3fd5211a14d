"""What checking a log's data files before a read costs, looked up one by one or listed at once.

    .venv/bin/python bench/bench_delta_log.py [--files 2000] [--s3-files 500] [--repeat 5]

`delta.read` on the delta-rs backend finds data files the log names but the store lacks before
any Spark job, so a missing file is an `InvalidDeltaLogError` rather than a FileNotFoundException
inside a job. Locally it looks each file up, on a store it lists the table's prefix once. Figures
(median of --repeat), on a table of one-row files each in a partition folder of its own:
  local   a lookup per file / one listing; a lookup per file / delta.read + count
  s3      one listing / a lookup per file, on a local S3 server (moto; Spark has no s3a here)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable, write_deltalake

from spark_flow import delta, get_session, storage
from spark_flow.local_s3 import LocalS3


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def table(path: str, files: int) -> str:
    """One commit of `files` one-row files (one partition each), as many small appends leave."""
    frame = pd.DataFrame({"id": range(files), "part": range(files)})
    write_deltalake(path, frame, partition_by=["part"])
    return path


def check_both_ways(path: str, repeat: int) -> dict[str, float]:
    files = list(DeltaTable(path).file_uris())
    return {
        "listing_s": median_seconds(lambda: storage.list_files(path, recursive=True), repeat),
        "lookups_s": median_seconds(
            lambda: [
                os.path.exists(f) if storage.is_local(f) else storage.exists(f) for f in files
            ],
            repeat,
        ),
        "open_log_s": median_seconds(lambda: delta.table_info(path), repeat),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--s3-files", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta_log.json"))
    args = parser.parse_args()

    spark = get_session("local")
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = table(str(Path(folder) / "small_files"), args.files)
            delta.read(spark, path).count()  # warm-up: JVM, Python workers, caches
            local = check_both_ways(path, args.repeat)
            local["read_count_s"] = median_seconds(
                lambda: delta.read(spark, path).count(), args.repeat
            )
    finally:
        spark.stop()
    with LocalS3() as server:
        os.environ.update(server.environment())  # deltalake and pyarrow read AWS_* from it
        bucket = server.create_bucket("bench-delta-log")
        s3 = check_both_ways(table(f"{bucket}/small_files", args.s3_files), args.repeat)

    result = {
        "files": args.files,
        "s3_files": args.s3_files,
        "local": local,
        "s3": s3,
        "local_lookups_over_listing": local["lookups_s"] / local["listing_s"],
        "local_lookups_over_read_count": local["lookups_s"] / local["read_count_s"],
        "s3_listing_over_lookups": s3["listing_s"] / s3["lookups_s"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
