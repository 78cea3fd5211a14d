"""A Connect server whose Python workers cannot import spark_flow: a clear error, not a stack."""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from spark_flow import get_session
from spark_flow.errors import ConnectServerError
from spark_flow.local_connect import LocalConnectServer


@pytest.fixture(scope="module")
def server_without_spark_flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server whose workers' Python has every dependency but not spark_flow itself.

    `python -S` skips site-packages' .pth files, among them the one that puts this checkout
    on the path; the dependencies come back through PYTHONPATH.
    """
    folder = tmp_path_factory.mktemp("connect-without-spark-flow")
    python = folder / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{sysconfig.get_paths()["purelib"]}" exec {sys.executable} -S "$@"\n'
    )
    python.chmod(0o755)
    with LocalConnectServer(folder, python=str(python)) as server:
        yield server.url


def test_a_server_that_cannot_import_spark_flow_says_what_to_install(
    connect_spark: SparkSession, server_without_spark_flow: str
) -> None:
    with pytest.raises(ConnectServerError) as failed:
        get_session("no-package", conf={"spark.remote": server_without_spark_flow})

    assert "cannot import spark_flow" in failed.value.problem
    assert "Install spark-flow" in failed.value.fix
