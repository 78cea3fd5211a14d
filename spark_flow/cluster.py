"""A Spark standalone cluster on this machine: one master, one worker, bound to 127.0.0.1.

`spark-flow cluster up` (and `make cluster-up`) starts both from the installed pyspark with
`spark-class`, records their pids and waits until the worker has registered with the master;
`spark-flow cluster down` stops exactly those processes. Jobs then run as on any cluster:
`spark-flow submit <job> --master spark://127.0.0.1:7077 -- ...`, executors in their own JVMs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from spark_flow._common import pid_alive
from spark_flow.errors import InvalidArgumentError
from spark_flow.submit import spark_home

__all__ = ["Cluster", "start", "stop"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_MASTER = "org.apache.spark.deploy.master.Master"
_WORKER = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL, its folder (pids, logs), its web UI."""

    url: str
    folder: Path
    ui_port: int


def start(
    folder: Path,
    *,
    port: int = 7077,
    ui_port: int = 8080,
    worker_cores: int = 2,
    worker_memory: str = "2g",
    timeout: float = 120.0,
) -> Cluster:
    """Start a master and a worker; return once the worker has registered.

    Raises:
        InvalidArgumentError: a cluster recorded in `folder` is still running, or one of the
            ports (`port`, `ui_port`, the worker's UI on `ui_port + 1`) is taken.
        ConfigError: no Spark installation to start it with (`spark_flow.submit.spark_home`).
        TimeoutError: the worker did not register within `timeout` (both are stopped again).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if any(pid_alive(pid) for pid in _recorded(folder)):
        raise InvalidArgumentError(
            "cluster", f"one is already running from {folder}", "Stop it first (cluster down)."
        )
    for name, number in (("port", port), ("ui_port", ui_port), ("ui_port", ui_port + 1)):
        _check_free(name, number)
    url = f"spark://{HOST}:{port}"
    home = spark_home()
    environment = {
        **os.environ,
        # Set, so pyspark's launcher scripts do not look for Spark with the python3 on PATH.
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": HOST,
        # Executors start Python workers with the interpreter that has spark_flow and its deps.
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "SPARK_WORKER_DIR": str(folder / "work"),
    }
    spark_class = str(home / "bin" / "spark-class")
    _launch(folder, "master", environment, [spark_class, _MASTER, "--host", HOST,
            "--port", str(port), "--webui-port", str(ui_port)])  # fmt: skip
    _launch(folder, "worker", environment, [spark_class, _WORKER, url, "--host", HOST,
            "--cores", str(worker_cores), "--memory", worker_memory,
            "--webui-port", str(ui_port + 1)])  # fmt: skip
    cluster = Cluster(url, folder, ui_port)
    try:
        _wait_for_worker(cluster, timeout)
    except BaseException:
        stop(folder)
        raise
    log.info("standalone cluster up at %s (UI http://%s:%d)", url, HOST, ui_port)
    return cluster


def stop(folder: Path, *, timeout: float = 30.0) -> list[int]:
    """Stop the processes recorded in `folder` (worker first); the pids that were stopped."""
    stopped = []
    for role in ("worker", "master"):
        pid_file = folder / f"{role}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
        pid_file.unlink()
    return stopped


def _launch(folder: Path, role: str, environment: dict[str, str], command: list[str]) -> None:
    with (folder / f"{role}.log").open("w") as log_file:  # the child keeps its own copy
        process = subprocess.Popen(  # spark-class execs java: this pid is the JVM's
            command, stdout=log_file, stderr=subprocess.STDOUT, env=environment,
            start_new_session=True,
        )  # fmt: skip
    (folder / f"{role}.pid").write_text(str(process.pid))


def _wait_for_worker(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        for role in ("master", "worker"):
            pid = int((cluster.folder / f"{role}.pid").read_text())
            if not pid_alive(pid):
                tail = (cluster.folder / f"{role}.log").read_text()[-2000:]
                raise RuntimeError(f"the {role} exited while starting:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{cluster.ui_port}/json/", timeout=2) as r:
                state = json.load(r)
        except (urllib.error.URLError, OSError, ValueError):
            state = {}
        if state.get("aliveworkers", 0):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no worker registered with {cluster.url} within {timeout:.0f}s: {state}")


def _check_free(name: str, port: int) -> None:
    """Refuse a port that is taken: Spark would bind the next free one instead, and the worker,
    told the master's URL, would wait for the master on a port where another process listens
    (another cluster's master, which it would join)."""
    problem = None if 1024 <= port <= 65535 else "out of range"
    if problem is None:
        with socket.socket() as probe:
            # As Spark binds: a port a stopped cluster left in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError as exc:
                problem = exc.strerror or "taken"
    if problem is not None:
        raise InvalidArgumentError(
            name,
            f"expected a free port from 1024 to 65535 on {HOST}, got {port} ({problem})",
            "Pass another port, or stop what listens there.",
        )


def _recorded(folder: Path) -> list[int]:
    return [int(p.read_text()) for p in folder.glob("*.pid")]
