"""Bundled jobs submitted to a real Spark standalone cluster (master + worker on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from _jobs import BIN, JOBS, reports, run, table_rows

from spark_flow._common import pid_alive

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
SPARK_FLOW = str(BIN / "spark-flow")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("cluster")
    up = run(SPARK_FLOW, "cluster", "up", "--dir", str(folder), "--port", str(free_port()),
             "--ui-port", str(free_port()))  # fmt: skip
    pids = [int(p.read_text()) for p in folder.glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield up.stdout.strip(), folder
    finally:  # also when the test failed: no JVM outlives the suite
        down = run(SPARK_FLOW, "cluster", "down", "--dir", str(folder))
        assert down.returncode == 0, down.stderr
        assert not [pid for pid in pids if pid_alive(pid)]


def submit_to(url: str, job: str, *args: str) -> dict[str, object]:
    result = run(
        str(BIN / "spark-submit"), "--master", url, "--total-executor-cores", "2",
        "--executor-memory", "1g", str(JOBS / f"{job}.py"), *args, profile="cluster",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = reports(result.stdout)
    return report


def test_the_cluster_is_one_master_and_one_worker_on_localhost(
    cluster: tuple[str, Path],
) -> None:
    url, folder = cluster
    assert url.startswith("spark://127.0.0.1:")
    assert sorted(p.name for p in folder.glob("*.pid")) == ["master.pid", "worker.pid"]


def test_bundled_jobs_run_on_the_cluster_executors(
    cluster: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = cluster
    devices = tmp_path / "devices"
    made = run(SPARK_FLOW, "generate", "devices", "--rows", "200", "--invalid-ratio", "0.1",
               "--seed", "3", "--output", str(devices))  # fmt: skip
    assert made.returncode == 0, made.stderr
    valid = sum(
        1
        for line in (devices / "devices.json").read_text().splitlines()
        if len((d := json.loads(line))["type"]) > 3 and d["full_name"] is not None
    )
    loaded = submit_to(url, "devices_loader", "--input", str(devices),
                       "--output", str(tmp_path / "loaded"), "--batch-id", "1",
                       "--checkpoint-dir", str(tmp_path / "checkpoints"))  # fmt: skip
    assert loaded["rows_written"] == valid
    assert table_rows(tmp_path / "loaded", "SELECT count(*) AS n FROM t")[0]["n"] == valid

    split = submit_to(url, "devices_split_loader", "--input", str(devices),
                      "--raw-output", str(tmp_path / "raw"), "--batch-id", "1",
                      "--enriched-output", str(tmp_path / "enriched"))  # fmt: skip
    branches = split["branches"]
    assert isinstance(branches, list)
    assert [b["status"] for b in branches] == ["success", "success", "success"]  # + quarantine
    assert table_rows(tmp_path / "enriched", "SELECT count(*) AS n FROM t")[0]["n"] == 200

    visits = tmp_path / "visits"
    made = run(SPARK_FLOW, "generate", "visits", "--date", "2024-03-10", "--rows-per-hour", "20",
               "--skip-hours", "3,7", "--output", str(visits))  # fmt: skip
    assert made.returncode == 0, made.stderr
    cube = submit_to(url, "visits_cube", "--input", str(visits), "--date", "2024-03-10",
                     "--output", str(tmp_path / "cube"), "--mode", "unaligned")  # fmt: skip
    assert cube["hours_present"] == 22
    (total,) = table_rows(
        tmp_path / "cube",
        "SELECT visits FROM t WHERE page IS NULL AND browser IS NULL AND country IS NULL",
    )
    assert total["visits"] == 22 * 20

    # The work ran in executors the worker launched, one folder per application.
    assert len(list((folder / "work").glob("app-*"))) >= 3
