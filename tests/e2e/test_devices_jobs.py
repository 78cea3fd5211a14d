"""devices_loader -> devices_aggregator through spark-submit, checked against counts made here."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from _jobs import BIN, JOBS, reports, run, submit, table_rows
from deltalake import write_deltalake

pytestmark = pytest.mark.e2e


def expected_counts(source: Path) -> Counter[tuple[str, str]]:
    """The aggregate computed without Spark, straight from the generated JSON lines."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in source.read_text().splitlines():
        device = json.loads(line)
        if len(device["type"]) > 3 and device["full_name"] is not None:
            counts[(device["type"], device["version"])] += 1
    return counts


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("devices")
    generated = run(
        str(BIN / "spark-flow"), "generate", "devices", "--rows", "300",
        "--invalid-ratio", "0.2", "--seed", "7", "--output", str(folder),
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    return folder


def test_loader_triggers_aggregator_and_the_counts_match(devices: Path, tmp_path: Path) -> None:
    table, counts = tmp_path / "devices", tmp_path / "counts"

    loaded = submit(
        "devices_loader", "--input", str(devices), "--output", str(table), "--batch-id", "1",
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--trigger", "devices_aggregator",
        "--", "--input", str(table), "--output", str(counts), "--wait-timeout", "30",
    )  # fmt: skip

    assert loaded.returncode == 0, loaded.stderr[-3000:]
    loader_report, aggregator_report = reports(loaded.stdout)
    expected = expected_counts(devices / "devices.json")
    assert loader_report["job"] == "devices_loader"
    assert loader_report["triggered"] == "devices_aggregator"
    assert loader_report["rows_written"] == sum(expected.values())
    assert aggregator_report["job"] == "devices_aggregator"
    assert aggregator_report["input_version"] == 0
    stored = table_rows(counts, "SELECT type, version, count FROM t")
    assert {(r["type"], r["version"]): r["count"] for r in stored} == dict(expected)
    names = table_rows(table, "SELECT full_name FROM t LIMIT 1")[0]["full_name"]
    assert isinstance(names, str)
    assert names.count(" ") >= 3  # enriched: "<type> model <i> <version>"

    replay = run(
        str(BIN / "spark-flow"), "run", "devices_loader", "--input", str(devices),
        "--output", str(table), "--batch-id", "1", "--checkpoint-dir", str(tmp_path / "ck"),
    )  # fmt: skip

    assert replay.returncode == 0, replay.stderr[-3000:]
    (report,) = reports(replay.stdout)
    assert report["committed"] is False
    assert table_rows(table, "SELECT count(*) AS n FROM t") == [{"n": sum(expected.values())}]


def test_the_aggregator_without_a_marker_fails_after_its_timeout(tmp_path: Path) -> None:
    waited = submit(
        "devices_aggregator", "--input", str(tmp_path / "never"), "--output",
        str(tmp_path / "counts"), "--wait-timeout", "0.5", "--poke-interval", "0.1",
    )  # fmt: skip

    assert waited.returncode == 1
    (report,) = reports(waited.stdout)
    assert report["status"] == "failed"
    assert "_spark_flow_ready/latest.json" in str(report["error"])
    # spark-submit's PythonRunner sends the Python process's stderr to its stdout.
    output = (waited.stdout + waited.stderr).splitlines()
    errors = [line for line in output if line.startswith("devices_aggregator:")]
    assert len(errors) == 1
    assert "no readiness marker" in errors[0]
    assert not (tmp_path / "counts").exists()
    assert "Running Spark version" not in waited.stdout + waited.stderr  # waited before Spark


def test_help_and_bad_arguments(tmp_path: Path) -> None:
    helped = run(sys.executable, str(JOBS / "devices_loader.py"), "--help")
    bad = run(sys.executable, str(JOBS / "devices_loader.py"), "--batch-id", "x")

    assert helped.returncode == 0
    assert "--trigger JOB" in helped.stdout
    assert bad.returncode == 2
    assert "argument --batch-id: expected an integer >= 0, got 'x'" in bad.stderr


def test_a_bad_argument_is_refused_before_spark_starts(devices: Path, tmp_path: Path) -> None:
    submitted = submit(
        "devices_loader", "--input", str(devices), "--output", str(tmp_path / "t"),
        "--batch-id", "-5",
    )  # fmt: skip

    assert submitted.returncode == 2, submitted.stderr[-3000:]
    # spark-submit's launcher logs a few lines of its own; a SparkContext would log this one.
    assert "Running Spark version" not in submitted.stderr
    # spark-submit passes the Python driver's stderr on through its own stdout.
    assert (
        "devices_loader: error: argument --batch-id: expected an integer >= 0, got '-5'. Pass "
        "the batch number in digits 0-9, e.g. the run date as YYYYMMDD.\n"
    ) in submitted.stdout + submitted.stderr
    assert not (tmp_path / "t").exists()


def test_split_loader_rerun_after_a_failed_branch_loads_every_row_once(
    devices: Path, tmp_path: Path
) -> None:
    # A table in the enriched output's place whose schema the rows do not fit: past the
    # argument checks, it fails that branch's write only.
    raw, enriched = tmp_path / "raw", tmp_path / "enriched"
    write_deltalake(str(enriched), pa.table({"full_name": pa.array([1], pa.int64())}))
    arguments = (
        "--input", str(devices), "--raw-output", str(raw), "--enriched-output", str(enriched),
        "--batch-id", "1",
    )  # fmt: skip

    failed = submit("devices_split_loader", *arguments)
    shutil.rmtree(enriched)
    rerun = submit("devices_split_loader", *arguments)

    assert failed.returncode == 1
    (failure,) = reports(failed.stdout)
    assert "branch 'enriched'" in str(failure["error"])
    outcomes = {b["name"]: b["status"] for b in failure["details"]["branches"]}  # type: ignore[index]
    assert outcomes == {"raw": "success", "enriched": "failed", "quarantine": "success"}
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (report,) = reports(rerun.stdout)
    outcomes = {b["name"]: b["status"] for b in report["branches"]}  # type: ignore[attr-defined]
    assert outcomes == {"raw": "already_done", "enriched": "success", "quarantine": "already_done"}
    lines = [json.loads(line) for line in (devices / "devices.json").read_text().splitlines()]
    accounting = report["accounting"]
    assert accounting["rows_read"] == len(lines)  # type: ignore[index]
    assert accounting["rows_written"] == {"raw": 0, "enriched": len(lines)}  # type: ignore[index]
    assert "raw" in accounting["note"]  # type: ignore[index]
    assert table_rows(raw, "SELECT count(*) AS n FROM t") == [{"n": len(lines)}]
    stored = table_rows(enriched, "SELECT full_name, loading_time FROM t")
    expected = Counter(" ".join(filter(None, (d["full_name"], d["version"]))) for d in lines)
    assert Counter(r["full_name"] for r in stored) == expected
    assert all(r["loading_time"] is not None for r in stored)


def test_output_router_routes_a_backfilled_date_to_the_legacy_csv_writer(
    devices: Path, tmp_path: Path
) -> None:
    routed = submit(
        "devices_output_router", "--input", str(devices), "--output", str(tmp_path / "out"),
        "--route-by", "date", "--run-date", "2023-12-31", "--migration-date", "2024-01-01",
    )  # fmt: skip

    assert routed.returncode == 0, routed.stderr[-3000:]
    (report,) = reports(routed.stdout)
    assert report["route"] == {
        "choice": "devices_output_router",
        "branch": "legacy",
        "reason": "run date 2023-12-31 is before the migration on 2024-01-01",
    }
    assert report["output_type"] == "csv"
    assert report["batch_id"] == 20231231
    published = list((tmp_path / "out" / "legacy" / "batch_id=20231231").glob("*.csv"))
    rows = sum(len(p.read_text().splitlines()) - 1 for p in published)  # minus each header
    assert rows == report["rows_written"] == 300
