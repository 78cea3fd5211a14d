"""The devices router with --output-type postgres, and the demo's PostgreSQL step."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import pytest
from _pg import rows
from pyspark.sql import SparkSession

from spark_flow.demo import POSTGRES_TABLE, _postgres_load
from spark_flow.generate import generate_devices
from spark_flow.jobs import load
from spark_flow.postgres import DSN_ENV
from spark_flow.postgres.local import LocalPostgres

pytestmark = pytest.mark.postgres

router = load("devices_output_router")


def route(spark: SparkSession, *argv: str) -> dict[str, Any]:
    report: dict[str, Any] = router.run(spark, router.parser().parse_args(list(argv))).as_dict()
    return report


def test_the_router_loads_the_devices_into_a_postgres_table_once(
    spark: SparkSession, postgres: LocalPostgres, table: str, tmp_path: Path
) -> None:
    generate_devices(tmp_path / "devices", rows=40, seed=3)
    argv = ("--input", str(tmp_path / "devices"), "--output", f"public.{table}")

    first = route(spark, *argv, "--output-type", "postgres", "--batch-id", "7")
    replay = route(spark, *argv, "--output-type", "postgres", "--batch-id", "7")

    assert first["route"] == {
        "choice": "devices_output_router",
        "branch": "postgres",
        "reason": "--output-type='postgres'",
    }
    assert (first["output"], first["committed"], first["rows_written"]) == (
        f"public.{table}", True, 40
    )  # fmt: skip
    assert (replay["committed"], replay["rows_written"]) == (False, 0)
    assert "batch 7 of 'devices_output_router.7' was already committed" in replay["skipped_reason"]
    assert rows(postgres, table, "count(*)") == {(40,): 1}


def test_the_demo_loads_the_devices_into_postgres_when_a_server_answers(
    spark: SparkSession, postgres: LocalPostgres, tmp_path: Path
) -> None:
    generate_devices(tmp_path / "input", rows=20, invalid_ratio=0.2)
    out = io.StringIO()

    for _ in range(2):  # a second demo run starts from an empty demo table again
        _postgres_load(spark, tmp_path, out)

    told = out.getvalue()
    assert f"9. PostgreSQL output: the devices load into {POSTGRES_TABLE} on spark_flow@" in told
    assert told.count("   run: committed=True, 20 rows") == 2
    assert "   replay: committed=False, 0 rows (batch 1 already committed)" in told
    assert "   rows in the table: 20 (each row once)" in told
    assert rows(postgres, POSTGRES_TABLE, "count(*)") == {(20,): 1}


def test_the_demo_skips_its_postgres_step_in_one_line_when_no_server_answers(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(DSN_ENV, f"host=127.0.0.1 port={port} dbname=demo user=demo")
    out = io.StringIO()

    _postgres_load(spark, tmp_path, out)

    assert out.getvalue() == (
        f"9. PostgreSQL output: skipped, no server answers at demo@127.0.0.1:{port}/demo "
        "(point $SPARK_FLOW_POSTGRES_DSN or the profile's [postgres] table at a server to see "
        "it)\n"
    )
