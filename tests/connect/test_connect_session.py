"""Joining a real Spark Connect server: settings, the Delta backend the server has, bad URLs."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta, get_session
from spark_flow.errors import ConnectServerError
from spark_flow.local_connect import LocalConnectServer
from spark_flow.session import is_connect


def test_get_session_joins_the_server_the_url_names_and_sets_what_it_takes(
    connect_server: LocalConnectServer,
    connect_spark: SparkSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="spark_flow"):
        spark = get_session(
            "joins",
            conf={"spark.remote": connect_server.url, "spark.sql.shuffle.partitions": "3"},
        )

    assert is_connect(spark)  # the profile's master did not stop it (no JVM here)
    assert spark.conf.get("spark.sql.shuffle.partitions") == "3"  # runtime: set
    refused = " ".join(r.getMessage() for r in caplog.records)
    assert "spark.sql.warehouse.dir" in refused  # static: named, not dropped silently
    assert spark.range(3).count() == 3


def test_spark_remote_in_the_environment_is_enough(
    connect_server: LocalConnectServer, connect_spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARK_REMOTE", connect_server.url)

    spark = get_session("from-env")

    assert is_connect(spark)


def test_enable_delta_asks_the_server_whether_it_has_the_connector(
    connect_spark: SparkSession,
) -> None:
    from spark_flow.delta import jvm

    assert jvm.is_available(connect_spark) is False  # asked: the test server has no Delta JARs
    assert delta.backend(connect_spark) == "delta-rs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_url_nothing_answers_is_a_clear_error_before_any_spark_call(
    connect_spark: SparkSession,
) -> None:
    url = f"sc://127.0.0.1:{free_port()};token=secret"

    with pytest.raises(ConnectServerError) as failed:
        get_session("nowhere", conf={"spark.remote": url})

    assert failed.value.server == url.split(";", maxsplit=1)[0]  # where, without the token
    assert "nothing answered" in failed.value.problem
    assert "spark.remote" in failed.value.fix
    assert "secret" not in str(failed.value)


def test_a_url_that_is_not_sc_is_refused(connect_spark: SparkSession) -> None:
    with pytest.raises(ConnectServerError, match="sc://host:port"):
        get_session("bad", conf={"spark.remote": "http://127.0.0.1:15002"})


API_MODE_CONNECT = """
import sys
from spark_flow import delta, get_session
from spark_flow.session import is_connect
spark = get_session("api-mode", conf={"spark.api.mode": "connect", "spark.master": "local[1]"})
result = delta.write(spark.range(3), sys.argv[1], app_id="a", txn_version=1)
print(is_connect(spark), delta.backend(spark), result.committed, result.rows_written)
spark.stop()
"""


def test_api_mode_connect_without_a_url_starts_a_local_connect_server(tmp_path: Path) -> None:
    # Its own process: pyspark switches a whole process to Connect for such a session.
    done = subprocess.run(
        [sys.executable, "-c", API_MODE_CONNECT, str(tmp_path / "t")],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "delta-rs", "True", "3"]
