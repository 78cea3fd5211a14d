"""Gather the figures the benches wrote into `bench/results/latest.json` and `latest.md`.

    .venv/bin/python bench/report.py            # `make bench` runs it after the benches

Every figure is a ratio against a baseline measured in the same run of its bench; the report
adds the machine (cores, memory, Spark, backend) and says, per figure, whether its target holds.
A bench that did not run this time is listed as missing rather than reported from an old file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Figure:
    """One line of the report: a ratio from one results file, its baseline and its target."""

    bench: str
    name: str
    ratio: Callable[[dict[str, Any]], float]
    detail: Callable[[dict[str, Any]], str]
    target: str = ""
    met: Callable[[float], bool] | None = None


def _planning(n: str) -> Figure:
    return Figure(
        "fan_in", f"planning the union of {n} parents: reduce(unionByName) / union_by_name",
        lambda r: r["planning"][n]["reduce_union_by_name_s"] / r["planning"][n]["union_by_name_s"],
        lambda r: f"{r['planning'][n]['reduce_union_by_name_s']:.2f} s / "
        f"{r['planning'][n]['union_by_name_s']:.2f} s",
    )  # fmt: skip


def _stream(decode_rounds: str, read_path: str) -> Figure:
    return Figure(
        f"streaming-decode-{decode_rounds}",
        f"stream, {read_path}: split (2 branches) / single sink",
        lambda r: r["split_over_single"],
        lambda r: f"{r['split_s']:.2f} s / {r['single_s']:.2f} s "
        f"({r['split_rows_per_s']:,.0f} vs {r['single_rows_per_s']:,.0f} rows/s); the second "
        f"output's write alone: {r['second_write_over_single']:.2f} of the single sink",
        "<= 1.3", lambda x: x <= 1.3,
    )  # fmt: skip


FIGURES = [
    Figure("delta", "Delta write / Parquet write", lambda r: r["write_ratio"],
           lambda r: f"{r['delta_write_s']:.2f} s / {r['parquet_write_s']:.2f} s",
           "<= 1.15", lambda x: x <= 1.15),
    Figure("delta", "Delta read + aggregate / Parquet read + aggregate", lambda r: r["read_ratio"],
           lambda r: f"{r['delta_read_aggregate_s']:.2f} s / {r['parquet_read_aggregate_s']:.2f} s",
           "<= 1.2", lambda x: x <= 1.2),
    Figure("delta", "replay of a committed (app_id, version): seconds / Parquet write",
           lambda r: r["replay_s"] / r["parquet_write_s"],
           lambda r: f"{r['replay_s'] * 1000:.1f} ms, {r['replay_spark_jobs']} Spark jobs",
           "0 jobs", None),
    Figure("delta_scale", "Delta write at 1, 2, 4, 8 M rows: R^2 of a linear fit",
           lambda r: r["linear_fit_r2"],
           lambda r: ", ".join(f"{n} M {s:.2f} s" for n, s in r["seconds"].items())
           + f"; {r['fixed_seconds']:.2f} s + {r['seconds_per_million']:.3f} s/M",
           ">= 0.95", lambda x: x >= 0.95),
    Figure("delta_maintenance", "Delta write with statistics / without (numRecords only)",
           lambda r: r["stats_ratio"],
           lambda r: f"{r['with_stats_s']:.2f} s / {r['without_stats_s']:.2f} s "
           f"({r['rows']:,} rows)", "<= 1.05", lambda x: x <= 1.05),
    Figure("delta_maintenance", "small appends of 10 rows: files before / after optimize",
           lambda r: r["files_ratio"],
           lambda r: f"{r['appends']} appends: {r['files_before']} -> {r['files_after']} files "
           f"(optimize {r['optimize_s']:.2f} s, local[{r['cores']}])"),
    Figure("delta_maintenance", "read + aggregate after optimize / before",
           lambda r: r["read_after_over_before"],
           lambda r: f"{r['read_after_s']:.2f} s / {r['read_before_s']:.2f} s", "< 1",
           lambda x: x < 1),
    Figure("delta_maintenance", "small write with optimize_write / without: seconds",
           lambda r: r["optimized_write_ratio"],
           lambda r: f"{r['optimized_files']} files for {r['optimized_appends']} writes "
           f"({r['plain_files_per_write']:.1f} per write without)"),
    Figure("delta_mapping", "Delta write to a column-mapped table / to an unmapped one",
           lambda r: r["mapped_ratio"],
           lambda r: f"{r['mapped_write_s']:.2f} s / {r['unmapped_write_s']:.2f} s "
           f"({r['rows']:,} rows)", "<= 1.1", lambda x: x <= 1.1),
    Figure("delta_read", "column-mapped read + aggregate / the same files unmapped",
           lambda r: r["mapped_ratio"], lambda r: f"{r['mapped_s']:.2f} s / {r['plain_s']:.2f} s",
           "<= 1.1", lambda x: x <= 1.1),
    Figure("delta_read", "read + aggregate, 10 % of rows deleted by DVs / plain",
           lambda r: r["deleted_ratio"],
           lambda r: f"{r['deleted_s']:.2f} s / {r['plain_again_s']:.2f} s", "<= 1.3",
           lambda x: x <= 1.3),
    Figure("delta_read", "delta.read with a selective filter: files scanned / files (20 batches)",
           lambda r: r["skipping"]["files_ratio"],
           lambda r: f"{r['skipping']['files_scanned']} / {r['skipping']['files_in_table']} "
           f"(written by delta.write); by deltalake: "
           f"{r['skipping_deltalake_written']['files_scanned']} / "
           f"{r['skipping_deltalake_written']['files_in_table']}", "<= 0.1", lambda x: x <= 0.1),
    Figure("delta_read", "DuckDB delta_scan, same filter: files scanned / files (20 batches)",
           lambda r: r["skipping"]["duckdb_files_ratio"],
           lambda r: f"{r['skipping']['duckdb_files_scanned']} / "
           f"{r['skipping']['files_in_table']} (written by delta.write)", "<= 0.1",
           lambda x: x <= 0.1),
    Figure("sequence", "Sequence resume after the boundary / full run",
           lambda r: r["resume_ratio"],
           lambda r: f"{r['resume_s']:.2f} s / {r['full_run_s']:.2f} s", "<= 0.3",
           lambda x: x <= 0.3),
    Figure("accounting", "devices_loader with row accounting / without (20 % invalid)",
           lambda r: r["with_over_without"],
           lambda r: f"{r['with_s']:.2f} s / {r['without_s']:.2f} s ({r['rows']:,} rows)",
           "<= 1.05", lambda x: x <= 1.05),
    Figure("fan_out", "Parallel Split: naive (a read per branch) / split",
           lambda r: r["naive_over_split"],
           lambda r: f"{r['naive_s']:.2f} s / {r['split_s']:.2f} s", ">= 2", lambda x: x >= 2),
    Figure("fan_in", "fan-in, 240 files: reduce(unionByName) / one scan",
           lambda r: r["240_files"]["naive_over_one_scan"],
           lambda r: f"{r['240_files']['naive_s']:.2f} s / {r['240_files']['one_scan_s']:.2f} s"),
    Figure("fan_in", "fan-in, 1,000 partitions: reduce(unionByName) / one scan",
           lambda r: r["1000_partitions"]["naive_over_one_scan"],
           lambda r: f"{r['1000_partitions']['naive_s']:.1f} s / "
           f"{r['1000_partitions']['one_scan_s']:.1f} s", ">= 3", lambda x: x >= 3),
    _planning("10"), _planning("100"), _planning("1000"),
    Figure("runners", "backfill of 8 dates: 1 active run / 4 active runs",
           lambda r: r["speedup"],
           lambda r: f"{r['sequential_s']:.2f} s / {r['concurrent_s']:.2f} s", ">= 1.5",
           lambda x: x >= 1.5),
    Figure("leases", "runner lock acquire + release: S3 server (moto) / local disk",
           lambda r: r["s3_over_local"],
           lambda r: f"S3 median {r['s3_median_s'] * 1000:.1f} ms, p99 {r['s3_p99_s'] * 1000:.1f} "
           f"ms; local median {r['local_median_s'] * 1000:.2f} ms ({r['rounds']} rounds)"),
    _stream("0", "JSON"), _stream("8", "Python decode"),
    Figure("object_store", "Delta write to S3 (moto) / pyarrow writing the same rows there",
           lambda r: r["write_ratio"],
           lambda r: f"{r['delta_write_s']:.2f} s / {r['floor_write_s']:.2f} s "
           f"({r['rows']:,} rows); Spark's handoff to Arrow alone {r['handoff_over_floor']:.2f}"
           " of the floor", "<= 1.3", lambda x: x <= 1.3),
    Figure("object_store", "Delta write to S3 / the same Spark job writing without Delta",
           lambda r: r["delta_over_plain_job"],
           lambda r: f"{r['delta_write_s']:.2f} s / {r['plain_parquet_job_s']:.2f} s"),
    Figure("object_store", "delta.read + aggregate on S3 / pyarrow dataset scan + aggregate",
           lambda r: float("nan") if r["read_ratio"] is None else r["read_ratio"],
           lambda r: r["read_problem"] or f"{r['delta_read_aggregate_s']:.2f} s / "
           f"{r['floor_read_aggregate_s']:.2f} s", "<= 1.3", lambda x: x <= 1.3),
    Figure("postgres", "PostgreSQL output / df.write.jdbc", lambda r: r["write_ratio"],
           lambda r: f"{r['ours_s']:.2f} s / {r['jdbc_s']:.2f} s ({r['rows']:,} rows); the "
           f"exactly-once publish {r['publish_s']:.2f} s, {r['publish_share']:.0%} of the write",
           "<= 1.2", lambda x: x <= 1.2),
]  # fmt: skip


def machine() -> dict[str, Any]:
    import pyspark

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "spark": pyspark.__version__,
        "delta_backend": "jvm" if _jvm_jars_present() else "delta-rs",
        "platform": platform.platform(),
    }


def _jvm_jars_present() -> bool:
    """Whether delta-spark's JARs sit in pyspark's jars (the benches then used the jvm backend)."""
    import pyspark

    return any((Path(pyspark.__file__).parent / "jars").glob("delta-spark*.jar"))


def main(since: float | None = None) -> int:
    """Write the report from results newer than `since` (default: all present)."""
    rows, missing = [], set()
    for figure in FIGURES:
        source = RESULTS / f"{figure.bench}.json"
        if not source.exists() or (since is not None and source.stat().st_mtime < since):
            missing.add(figure.bench)
            continue
        result = json.loads(source.read_text())
        ratio = figure.ratio(result)
        rows.append(
            {
                "bench": figure.bench,
                "figure": figure.name,
                "ratio": round(ratio, 4),
                "measured": figure.detail(result),
                "target": figure.target,
                "target_met": None if figure.met is None else figure.met(ratio),
            }
        )
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "figures": rows,
        "missing": sorted(missing),
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Benchmarks, {report['generated_at']}",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
        "",
        "Each ratio is against a baseline measured in the same run.",
        "",
        "| figure | ratio | measured | target | met |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row["target_met"]]
        cells = [row["figure"], f"{row['ratio']:.3g}", row["measured"], row["target"], met]
        lines.append("| " + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Not run this time: {', '.join(sorted(missing))}."]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(float(sys.argv[1]) if len(sys.argv) > 1 else None))
