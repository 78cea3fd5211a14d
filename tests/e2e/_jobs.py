"""Running bundled jobs as users do (spark-submit, the console script) and reading their output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

import spark_flow

BIN = Path(sys.executable).parent
JOBS = Path(spark_flow.__file__).resolve().parent.parent / "jobs"
ENV = {
    **os.environ,
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    # `spark-flow run` records its runs; keep them out of the checkout's data/.
    "SPARK_FLOW_STATE": tempfile.mkdtemp(prefix="spark-flow-state-"),
}


def run(
    *command: str, state: Path | None = None, profile: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command as users do; `state` gives it a run-state store of its own."""
    env = ENV if state is None else {**ENV, "SPARK_FLOW_STATE": str(state)}
    env = env if profile is None else {**env, "SPARK_FLOW_PROFILE": profile}
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=300, check=False, env=env
    )


def submit(job: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "spark-submit"), "--master", "local[2]", str(JOBS / f"{job}.py"), *args)


def reports(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def table_rows(path: Path, query: str) -> list[dict[str, object]]:
    result = QueryBuilder().register("t", DeltaTable(str(path))).execute(query)
    return pa.table(result.read_all()).to_pylist()
