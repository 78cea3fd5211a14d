"""A throwaway Spark Connect server on 127.0.0.1: for tests and for trying Connect sessions.

The server ships in pyspark (`org.apache.spark.sql.connect.service.SparkConnectServer`, in
`pyspark/jars`) and starts through the installed pyspark's `spark-submit`, in `local[2]`, on a
free port:

    with LocalConnectServer(folder) as server:
        spark = get_session("try", conf={"spark.remote": server.url})

Its Python workers (data sources, UDFs, `foreachBatch`) run with `python`, this interpreter by
default, so they import the spark_flow this process imports. pyspark's `spark-submit` finds
`SPARK_HOME` through the first `python3` on `PATH`, so that interpreter's folder goes first.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spark_flow._local_server import HOST as LOCAL_HOST
from spark_flow._local_server import LocalServer, free_port
from spark_flow.errors import ConnectServerError

__all__ = ["LocalConnectServer"]

log = logging.getLogger(__name__)

HOST = LOCAL_HOST
_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
_START_TIMEOUT_S = 180.0
_SERVER_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}


@dataclass
class LocalConnectServer(LocalServer):
    """A Spark Connect server of its own on a free 127.0.0.1 port, `local[2]`.

    Attributes:
        folder: its working folder (warehouse, `server.log`).
        python: the interpreter of its Python workers.
        conf: Spark settings it starts with, over small local defaults.
        environment: variables its processes get on top of this one's, e.g. a store's
            (`LocalS3.environment()`): a Connect server reaches stores with settings of its
            own, never its clients'.
        port: the port, once started.
    """

    folder: Path
    python: str = sys.executable
    conf: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL clients connect to, e.g. `sc://127.0.0.1:40123`."""
        return f"sc://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def start(self) -> LocalConnectServer:
        """Start the server and wait until its port accepts connections.

        Raises:
            ConnectServerError: it exited while starting, or did not listen in time.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        launcher = Path(sys.executable).parent
        settings = {
            **_SERVER_CONF,
            **self.conf,
            "spark.connect.grpc.binding.address": HOST,
            "spark.connect.grpc.binding.port": str(self.port),
        }
        command = [str(launcher / "spark-submit"), "--master", "local[2]", "--class",
                   _SERVER_CLASS, "--name", "spark_flow-connect"]  # fmt: skip
        for key, value in settings.items():
            command += ["--conf", f"{key}={value}"]
        environment = {
            **os.environ,
            **self.environment,
            "PATH": f"{launcher}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYSPARK_PYTHON": self.python,
            "SPARK_LOCAL_IP": HOST,
        }
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "PYSPARK_GATEWAY_PORT"):
            environment.pop(name, None)  # this process's client settings are not the server's
        with self.log_file.open("wb") as out:  # the child keeps its own copy
            self._process = subprocess.Popen(  # spark-submit execs java: this pid is the JVM's
                command, stdout=out, stderr=subprocess.STDOUT, env=environment,
                cwd=self.folder, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_until_listening(self._process)
        except BaseException:
            self.stop()
            raise
        log.info("Spark Connect server listening on %s (log %s)", self.url, self.log_file)
        return self

    def _wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ConnectServerError(
                    self.url,
                    f"it exited with {process.returncode} while starting: "
                    f"{self.log_file.read_text(errors='replace')[-1500:]}",
                    "Check that Java 17 or newer is on PATH and pyspark is installed",
                )
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)  # polling a port that is not open yet, with a deadline
        raise ConnectServerError(
            self.url,
            f"it did not listen within {_START_TIMEOUT_S:.0f}s (log {self.log_file})",
            "Check that the machine is not overloaded and try again",
        )

    def stop(self) -> None:
        """Stop the server and its Python workers (its whole process group)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
