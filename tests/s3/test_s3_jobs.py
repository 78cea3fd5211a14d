"""The bundled devices jobs end to end on `s3://` inputs and outputs, as users run them.

spark-submit and `spark-flow` in processes of their own, with the AWS_* environment pointing at
the test run's S3 server (moto on 127.0.0.1) and nothing else shared with this process but the
bucket. Plain pyspark has no S3 connector: the jobs read their JSON input with Arrow in Python
workers (`spark_flow.files.read_files`), and the outputs go through the object-store paths of
the Delta writer, the file outputs and the run state.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder
from e2e._jobs import BIN, ENV, JOBS, reports
from pyarrow import parquet

from spark_flow import storage
from spark_flow.local_s3 import LocalS3

pytestmark = pytest.mark.e2e
SPARK_FLOW = str(BIN / "spark-flow")
DATES = ("2024-01-01", "2024-01-02", "2024-01-03")
MALFORMED_LINE = '{"type": "phone", "full_name": '  # cut short: Spark cannot parse it


def run(s3: LocalS3, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`command` in a process of its own that reaches the bucket through the AWS_* variables."""
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**ENV, **s3.environment(), **env},
    )


def submit(s3: LocalS3, job: str, *args: str) -> subprocess.CompletedProcess[str]:
    spark_submit = str(BIN / "spark-submit")
    return run(s3, spark_submit, "--master", "local[2]", str(JOBS / f"{job}.py"), *args)


def why(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command's JSON reports and the end of its stderr."""
    output = result.stdout + result.stderr
    return "\n".join([*(line for line in output.splitlines() if line.startswith("{")),
                      result.stderr[-2000:]])  # fmt: skip


def upload_devices(s3: LocalS3, target: str, tmp_path: Path, rows: int, seed: int) -> str:
    """`spark-flow generate devices` output plus one malformed line, copied to `target`; the
    generated lines' text."""
    local = tmp_path / f"generated-{seed}"
    made = run(s3, SPARK_FLOW, "generate", "devices", "--rows", str(rows), "--invalid-ratio",
               "0.2", "--seed", str(seed), "--output", str(local))  # fmt: skip
    assert made.returncode == 0, made.stderr
    lines = (local / "devices.json").read_text()
    text = f"{lines}{MALFORMED_LINE}\n"
    storage.write_text_atomically(storage.join(target, "devices.json"), text)
    return lines


def expected_counts(lines: str) -> Counter[tuple[str, str]]:
    """The devices_aggregator's counts, computed here from the generated lines."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in lines.splitlines():
        device = json.loads(line)
        if len(device["type"]) > 3 and device["full_name"] is not None:
            counts[(device["type"], device["version"])] += 1
    return counts


def table_rows(path: str, query: str) -> list[dict[str, object]]:
    """Rows of a Delta table in the bucket, read by deltalake itself (not by spark_flow)."""
    result = QueryBuilder().register("t", DeltaTable(path)).execute(query)
    return pa.table(result.read_all()).to_pylist()


def test_the_loader_reads_its_input_from_the_bucket(
    s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    lines = upload_devices(s3_server, f"{s3_bucket}/devices", tmp_path, rows=200, seed=3)
    table = tmp_path / "devices"

    loaded = submit(
        s3_server, "devices_loader", "--input", f"{s3_bucket}/devices", "--output", str(table),
        "--batch-id", "1", "--checkpoint-dir", str(tmp_path / "checkpoints"),
    )  # fmt: skip

    assert loaded.returncode == 0, why(loaded)
    (report,) = reports(loaded.stdout)
    assert report["rows_written"] == sum(expected_counts(lines).values())
    accounting = report["accounting"]
    assert isinstance(accounting, dict)
    assert accounting["rows_read"] == len(lines.splitlines()) + 1
    assert accounting["rows_rejected"]["malformed_record"] == 1
    assert accounting["balanced"] is True


def test_loader_and_aggregator_on_the_bucket_hand_over_by_the_marker(
    s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    lines = upload_devices(s3_server, f"{s3_bucket}/landing", tmp_path, rows=300, seed=7)
    table, counts = f"{s3_bucket}/tables/devices", f"{s3_bucket}/tables/counts"

    loaded = submit(
        s3_server, "devices_loader", "--input", f"{s3_bucket}/landing", "--output", table,
        "--batch-id", "1", "--checkpoint-dir", str(tmp_path / "checkpoints"),
        "--trigger", "devices_aggregator", "--", "--input", table, "--output", counts,
        "--wait-timeout", "30",
    )  # fmt: skip
    replay = run(
        s3_server, SPARK_FLOW, "run", "devices_loader", "--input", f"{s3_bucket}/landing",
        "--output", table, "--batch-id", "1", "--checkpoint-dir", str(tmp_path / "ck"),
    )  # fmt: skip

    assert loaded.returncode == 0, why(loaded)
    loader_report, aggregator_report = reports(loaded.stdout)
    expected = expected_counts(lines)
    assert loader_report["rows_written"] == sum(expected.values())
    assert aggregator_report["job"] == "devices_aggregator"
    assert storage.read_text(f"{table}/_spark_flow_ready/latest.json") is not None
    stored = table_rows(counts, "SELECT type, version, count FROM t")
    assert {(r["type"], r["version"]): r["count"] for r in stored} == dict(expected)
    assert replay.returncode == 0, why(replay)
    (again,) = reports(replay.stdout)
    assert again["committed"] is False
    assert table_rows(table, "SELECT count(*) AS n FROM t") == [{"n": sum(expected.values())}]


def test_the_split_loader_loads_both_tables_in_the_bucket_once(
    s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    lines = upload_devices(s3_server, f"{s3_bucket}/landing", tmp_path, rows=120, seed=11)
    raw, enriched = f"{s3_bucket}/tables/raw", f"{s3_bucket}/tables/enriched"
    arguments = ("--input", f"{s3_bucket}/landing", "--raw-output", raw,
                 "--enriched-output", enriched, "--batch-id", "4")  # fmt: skip

    first = submit(s3_server, "devices_split_loader", *arguments)
    second = submit(s3_server, "devices_split_loader", *arguments)

    assert first.returncode == 0, why(first)
    assert second.returncode == 0, why(second)
    (report,) = reports(second.stdout)
    assert {b["name"]: b["status"] for b in report["branches"]} == {  # type: ignore[union-attr]
        "raw": "already_done",
        "enriched": "already_done",
        "quarantine": "already_done",
    }
    parsed = len(lines.splitlines())
    for table in (raw, enriched):
        assert table_rows(table, "SELECT count(*) AS n FROM t") == [{"n": parsed}]
    quarantine = f"{raw}/_spark_flow_quarantine"
    assert table_rows(quarantine, "SELECT raw FROM t") == [{"raw": MALFORMED_LINE}]


def test_the_router_publishes_parquet_batches_in_the_bucket_by_manifest(
    s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    lines = upload_devices(s3_server, f"{s3_bucket}/landing", tmp_path, rows=80, seed=5)
    output = f"{s3_bucket}/routed"
    arguments = ("--input", f"{s3_bucket}/landing", "--output", output,
                 "--output-type", "parquet", "--batch-id", "9")  # fmt: skip

    first = submit(s3_server, "devices_output_router", *arguments)
    replay = submit(s3_server, "devices_output_router", *arguments)

    assert first.returncode == 0, why(first)
    assert replay.returncode == 0, why(replay)
    assert reports(replay.stdout)[0]["committed"] is False
    manifest = json.loads(storage.read_text(f"{output}/batch_id=9/_spark_flow_batch.json") or "")
    filesystem, location = storage.filesystem(f"{output}/batch_id=9")
    files = [f"{location}/{name}" for name in manifest["files"]]
    published = parquet.ParquetDataset(files, filesystem=filesystem).read()
    assert published.num_rows == manifest["rows"] == len(lines.splitlines())


def test_a_concurrent_backfill_of_three_dates_keeps_its_state_in_the_bucket(
    s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    generated = {
        day: upload_devices(s3_server, f"{s3_bucket}/landing/{day}", tmp_path, rows=20 + n, seed=n)
        for n, day in enumerate(DATES)
    }
    table, state = f"{s3_bucket}/tables/devices", f"{s3_bucket}/state"
    backfill = (
        SPARK_FLOW, "backfill", "devices_loader", "--start", DATES[0], "--end", DATES[-1],
        "--max-active-runs", "3", "--", "--input", f"{s3_bucket}/landing/{{ds}}",
        "--output", table, "--batch-id", "{ds_nodash}",
        "--checkpoint-dir", str(tmp_path / "checkpoints"),
    )  # fmt: skip

    first = run(s3_server, *backfill, SPARK_FLOW_STATE=state)
    again = run(s3_server, *backfill, SPARK_FLOW_STATE=state)
    history = run(s3_server, SPARK_FLOW, "runs", "devices_loader", SPARK_FLOW_STATE=state)

    assert first.returncode == 0, why(first)
    (summary,) = reports(first.stdout)
    assert [r["status"] for r in summary["runs"]] == ["success"] * 3  # type: ignore[index]
    expected = sum(sum(expected_counts(lines).values()) for lines in generated.values())
    assert table_rows(table, "SELECT count(*) AS n FROM t") == [{"n": expected}]
    assert again.returncode == 0, why(again)
    (summary,) = reports(again.stdout)
    assert [r["status"] for r in summary["runs"]] == ["already_done"] * 3  # type: ignore[index]
    assert history.returncode == 0, why(history)
    runs = [line.split()[:3] for line in history.stdout.splitlines()[1:]]
    assert sorted(runs) == [[day, "1", "success"] for day in DATES]
