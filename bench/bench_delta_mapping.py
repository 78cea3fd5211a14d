"""What column mapping costs a delta-rs write: the same rows appended to a mapped and an unmapped
table, measured side by side in one run.

    .venv/bin/python bench/bench_delta_mapping.py [--rows 2000000] [--repeat 3]

Figure (median of --repeat runs, interleaved so drift hits both sides alike):
  mapped ratio   delta.write to a column-mapped (`name`) table / to an unmapped one   target <= 1.1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench_delta import source  # the same rows as bench_delta's write figures

from spark_flow import delta, get_session

FIELDS = [("id", "long"), ("name", "string"), ("value", "double"), ("ts", "timestamp")]


def empty_table(root: Path, *, mapped: bool) -> str:
    """A table with no rows, its first commit written as delta-spark writes one (`name` mode
    gives each column an id and a `col-<uuid>` physical name)."""
    fields = [
        {
            "name": name,
            "type": kind,
            "nullable": True,
            "metadata": {
                "delta.columnMapping.id": number,
                "delta.columnMapping.physicalName": f"col-{uuid.uuid4()}",
            }
            if mapped
            else {},
        }
        for number, (name, kind) in enumerate(FIELDS, start=1)
    ]
    features = ["columnMapping"] if mapped else []
    configuration = (
        {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": str(len(FIELDS))}
        if mapped
        else {}
    )
    protocol = {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": features,
        "writerFeatures": features,
    }
    metadata = {
        "id": str(uuid.uuid4()),
        "format": {"provider": "parquet", "options": {}},
        "schemaString": json.dumps({"type": "struct", "fields": fields}),
        "partitionColumns": [],
        "configuration": configuration,
        "createdTime": 0,
    }
    (root / "_delta_log").mkdir(parents=True)
    lines = [json.dumps({"protocol": protocol}), json.dumps({"metaData": metadata})]
    (root / "_delta_log" / f"{0:020d}.json").write_text("\n".join(lines) + "\n")
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta_mapping.json"))
    args = parser.parse_args()

    spark = get_session(
        "bench-delta-mapping",
        conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"},
    )
    work = Path(tempfile.mkdtemp(prefix="bench-delta-mapping-"))
    df = source(spark, args.rows)
    plain, mapped = [], []
    try:
        delta.write(df, empty_table(work / "warm-up", mapped=True))  # JIT, Python workers
        for i in range(args.repeat):
            steps = [(plain, False), (mapped, True)]
            for figures, is_mapped in steps if i % 2 == 0 else steps[::-1]:
                table = empty_table(work / f"{is_mapped}-{i}", mapped=is_mapped)
                started = time.perf_counter()
                delta.write(df, table)
                figures.append(time.perf_counter() - started)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "rows": args.rows,
        "repeat": args.repeat,
        "unmapped_write_s": statistics.median(plain),
        "mapped_write_s": statistics.median(mapped),
        "mapped_ratio": statistics.median(mapped) / statistics.median(plain),
        "unmapped_runs_s": plain,
        "mapped_runs_s": mapped,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"seconds (median)   unmapped write {figures['unmapped_write_s']:.2f}, "
        f"mapped write {figures['mapped_write_s']:.2f}; ratio {figures['mapped_ratio']:.3f}"
    )


if __name__ == "__main__":
    main()
