"""devices_stream_loader: a process killed mid micro-batch, restarted from its checkpoint."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from _jobs import BIN, reports, run, submit, table_rows
from deltalake import write_deltalake

pytestmark = pytest.mark.e2e


def test_a_killed_stream_restarts_and_every_table_holds_each_row_once(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    expected: Counter[tuple[str, str, str]] = Counter()
    for n, rows in enumerate((30, 40, 50)):
        made = run(str(BIN / "spark-flow"), "generate", "devices", "--rows", str(rows),
                   "--seed", str(n), "--output", str(tmp_path / f"made-{n}"))  # fmt: skip
        assert made.returncode == 0, made.stderr
        target = incoming / f"devices-{n}.json"
        shutil.move(tmp_path / f"made-{n}" / "devices.json", target)
        for line in target.read_text().splitlines():
            device = json.loads(line)
            expected[(device["type"], device["full_name"], device["version"])] += 1
    raw, enriched = tmp_path / "raw", tmp_path / "enriched"
    arguments = (
        "--input", str(incoming), "--raw-output", str(raw), "--enriched-output", str(enriched),
        "--checkpoint", str(tmp_path / "checkpoint"), "--available-now",
        "--max-files-per-trigger", "1",
    )  # fmt: skip

    killed = run(sys.executable, str(Path(__file__).with_name("_stream_crash.py")), *arguments)
    assert killed.returncode == 9, killed.stderr[-3000:]
    assert table_rows(raw, "SELECT count(*) AS n FROM t")[0]["n"] == 70  # batches 0 and 1
    assert table_rows(enriched, "SELECT count(*) AS n FROM t")[0]["n"] == 30  # batch 0 only

    restarted = submit("devices_stream_loader", *arguments)

    assert restarted.returncode == 0, restarted.stderr[-3000:]
    (report,) = reports(restarted.stdout)
    assert report["micro_batches"] == [1, 2]
    assert report["branches"]["raw"] == {"rows_written": 50, "already_done": [1]}
    assert report["branches"]["enriched"] == {"rows_written": 90, "already_done": []}
    stored = table_rows(raw, "SELECT type, full_name, version FROM t")
    assert Counter((r["type"], r["full_name"], r["version"]) for r in stored) == expected
    assert table_rows(enriched, "SELECT count(*) AS n FROM t")[0]["n"] == expected.total()


def test_a_failed_branch_stops_the_stream_with_exit_1_naming_it(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    made = run(str(BIN / "spark-flow"), "generate", "devices", "--rows", "10",
               "--output", str(incoming))  # fmt: skip
    assert made.returncode == 0, made.stderr
    # A table in the enriched output's place whose schema the rows do not fit: past the
    # argument checks, it fails that branch's write only.
    blocked = tmp_path / "enriched"
    write_deltalake(str(blocked), pa.table({"full_name": pa.array([1], pa.int64())}))

    failed = submit(
        "devices_stream_loader", "--input", str(incoming), "--raw-output", str(tmp_path / "raw"),
        "--enriched-output", str(blocked), "--checkpoint", str(tmp_path / "checkpoint"),
        "--trigger-once",
    )  # fmt: skip

    assert failed.returncode == 1
    (report,) = reports(failed.stdout)
    assert report["status"] == "failed"
    assert "branch 'enriched'" in report["error"]
