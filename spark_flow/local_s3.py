"""A throwaway S3-compatible server on 127.0.0.1 (moto): for tests, benchmarks and trying things.

moto's server runs in a process of its own on a free port and serves the S3 API with conditional
writes enforced (`If-None-Match: *` answers 412), which is what deltalake's commits and the
runner's leases rely on. It listens on 127.0.0.1 only and keeps everything in memory.

    with LocalS3() as server:
        os.environ.update(server.environment())
        bucket = server.create_bucket("warehouse")      # "s3://warehouse"
        delta.write(df, f"{bucket}/devices", app_id="try", txn_version=1)

The server runs in another process on purpose: deltalake calls that hold the GIL while they wait
on the store would stall a server thread of the same process they are waiting for.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

from spark_flow._local_server import LocalServer, free_port
from spark_flow.errors import MissingDependencyError, SparkFlowError

__all__ = ["LocalS3"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0


@dataclass
class LocalS3(LocalServer):
    """moto's S3 server of its own, on a free 127.0.0.1 port.

    Attributes:
        port: the port, once started.
        access_key: the (fake) access key clients send; moto accepts any.
        secret_key: the (fake) secret key.
        region: the region clients name.
    """

    port: int = 0
    access_key: str = "testing"
    secret_key: str = field(default="testing", repr=False)
    region: str = "us-east-1"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _folder: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """The server's URL, e.g. `http://127.0.0.1:40123`."""
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The AWS variables that point deltalake, pyarrow, obstore and boto3 at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",  # deltalake and obstore refuse plain http otherwise
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> LocalS3:
        """Start the server and wait until it accepts connections."""
        try:
            import moto.server  # noqa: F401  (only to fail early with a clear error)
        except ImportError as exc:
            raise MissingDependencyError("a local S3 server", "moto[server]", "dev") from exc
        self.port = free_port()
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._folder = tempfile.TemporaryDirectory(prefix="spark_flow-local-s3-")
        # moto's request recorder (`recording`) writes into its working folder unless told.
        recording = os.path.join(self._folder.name, "requests.jsonl")
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MOTO_RECORDER_FILEPATH": recording},
        )
        self._wait_until_listening(self._process)
        log.info("local S3 server listening on %s", self.endpoint)
        return self

    def _wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SparkFlowError(
                    f"the local S3 server (moto) exited with {process.returncode} while starting. "
                    f"Run {' '.join(process.args)} by hand to see why."  # type: ignore[arg-type]
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)  # polling a port that is not open yet, with a deadline
        self.stop()
        raise SparkFlowError(
            f"the local S3 server (moto) did not listen on {self.endpoint} within "
            f"{_START_TIMEOUT_S:.0f}s. Check that the machine is not overloaded and try again."
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket `name` on this server and return its URI, `s3://name`."""
        from pyarrow.fs import S3FileSystem

        store = S3FileSystem(
            endpoint_override=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            allow_bucket_creation=True,
        )
        store.create_dir(name)
        return f"s3://{name}"

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, str]]]:
        """(method, `/bucket/key`) of each request the server answers inside the block, from any
        process (Spark's Python workers too), in order; the list is filled when the block ends.

        For tests and benchmarks that count requests: on a real store each one is a round trip.

        Example:
            with server.recording() as requests:
                delta.read(spark, "s3://warehouse/devices").collect()
            gets = [path for method, path in requests if method == "GET"]
        """

        def recorder(action: str) -> bytes:
            url = f"{self.endpoint}/moto-api/recorder/{action}"
            body = None if action.startswith("download") else b"{}"
            with urllib.request.urlopen(urllib.request.Request(url, body)) as reply:
                return bytes(reply.read())

        requests: list[tuple[str, str]] = []
        recorder("reset-recording")
        recorder("start-recording")
        try:
            yield requests
        finally:
            recorder("stop-recording")
        for line in recorder("download-recording").decode().splitlines():
            request = json.loads(line)
            path = request["url"].removeprefix(self.endpoint).split("?", 1)[0]
            requests.append((request["method"], unquote(path)))

    def stop(self) -> None:
        """Stop the server; its buckets are gone with it."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
