"""`spark-flow submit` from a shell whose `python3` has no pyspark (no virtualenv activated)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _jobs import BIN, reports, run, table_rows

pytestmark = pytest.mark.e2e
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture
def bare_shell(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh login shell: the first `python3` on PATH is the system's."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 to stand for a system Python")
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").symlink_to(SYSTEM_PYTHON)
    probe = [SYSTEM_PYTHON, "-c", "import pyspark"]
    if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        pytest.skip("the system Python has pyspark: it cannot stand for one without")
    keep = ("HOME", "LANG", "JAVA_HOME", "TMPDIR", "SPARK_FLOW_STATE")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "PATH": f"{shims}:/usr/local/bin:/usr/bin:/bin",
    }


def test_submit_runs_a_bundled_job_from_a_shell_without_the_virtualenv(
    bare_shell: dict[str, str], tmp_path: Path
) -> None:
    devices = tmp_path / "devices"
    made = run(str(BIN / "spark-flow"), "generate", "devices", "--rows", "40", "--seed", "5",
               "--invalid-ratio", "0", "--output", str(devices))  # fmt: skip
    assert made.returncode == 0, made.stderr
    job_args = ["--input", str(devices), "--output", str(tmp_path / "t"), "--batch-id", "1"]

    # What the README used to show: pyspark's launcher looks for Spark with that python3.
    raw = subprocess.run(
        [str(BIN / "spark-submit"), "--master", "local[1]", "x.py"],
        env=bare_shell, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    submitted = subprocess.run(
        [str(BIN / "spark-flow"), "submit", "devices_loader", "--master", "local[2]",
         "--", *job_args],
        env=bare_shell, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip

    assert raw.returncode != 0
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    (report,) = reports(submitted.stdout)
    assert (report["job"], report["status"], report["rows_written"]) == (
        "devices_loader", "success", 40,
    )  # fmt: skip
    assert table_rows(tmp_path / "t", "SELECT count(*) AS n FROM t") == [{"n": 40}]


def test_submit_passes_spark_submit_s_exit_code_and_the_job_s_refusal(tmp_path: Path) -> None:
    refused = run(str(BIN / "spark-flow"), "submit", "visits_trends", "--master", "local[1]",
                  "--", "--input", str(tmp_path / "none"), "--date", "2024-01-01",
                  "--output", str(tmp_path / "t"))  # fmt: skip

    assert refused.returncode == 2  # the job's own usage error, through spark-submit
    assert "visits_trends: error: argument --input" in refused.stderr + refused.stdout
    assert not [json.loads(line) for line in refused.stdout.splitlines() if line[:1] == "{"]
