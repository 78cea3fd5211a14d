"""A server that does not answer, a wrong password, a missing database: clear, before Spark."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from _pg import rows
from pyspark.sql import SparkSession

from spark_flow.errors import InvalidArgumentError, PostgresConnectionError
from spark_flow.outputs import output_writer
from spark_flow.postgres import DSN_ENV
from spark_flow.postgres.local import LocalPostgres
from spark_flow.testing import count_spark_jobs

pytestmark = pytest.mark.postgres


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nobody listens once the probe is closed


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (("{dsn}", "wrong-password"), ("password authentication failed", "set PGPASSWORD")),
        (("{dsn} dbname=no_such_db", None), ('database "no_such_db" does not exist', "createdb")),
        (("host=127.0.0.1 port={closed}", None), ("Connection refused", "pg_isready")),
    ],
    ids=["wrong password", "missing database", "no server"],
)
def test_a_failed_connection_names_the_server_and_what_to_check_before_any_spark_job(
    spark: SparkSession,
    postgres: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    given: tuple[str, str | None],
    expected: tuple[str, str],
) -> None:
    (dsn, password), (fragment, fix) = given, expected
    monkeypatch.setenv(DSN_ENV, dsn.format(dsn=postgres.dsn, closed=closed_port()))
    if password is not None:
        monkeypatch.setenv("PGPASSWORD", password)
    df = spark.range(3)

    with count_spark_jobs(spark) as jobs, pytest.raises(PostgresConnectionError) as caught:
        output_writer("postgres").write(df, "devices", app_id="loader", txn_version=1)

    error = caught.value
    assert fragment in error.problem
    assert fix in error.fix
    assert "@127.0.0.1:" in error.server
    assert jobs.count == 0
    assert "wrong-password" not in str(error)
    assert postgres.password not in str(error)


def test_a_dsn_that_does_not_parse_or_holds_a_password_is_refused_without_echoing_it(
    spark: SparkSession, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dsn, fragment in [
        ("host=127.0.0.1 port", "not a libpq connection string"),
        ("postgresql://loader:s3cret@127.0.0.1/db", "holds a password"),
    ]:
        monkeypatch.setenv(DSN_ENV, dsn)
        with count_spark_jobs(spark) as jobs, pytest.raises(InvalidArgumentError) as caught:
            output_writer("postgres").write(spark.range(1), "t", app_id="a", txn_version=1)
        assert fragment in str(caught.value)
        assert "s3cret" not in str(caught.value)
        assert caught.value.__cause__ is None
        assert jobs.count == 0


def test_the_password_may_come_from_a_pgpass_file_and_reaches_the_executors(
    spark: SparkSession,
    postgres: LocalPostgres,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    table: str,
) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres.port}:*:{postgres.user}:{postgres.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(pgpass))

    output_writer("postgres").write(spark.range(5, numPartitions=2), table, app_id="a",
                                    txn_version=1)  # fmt: skip

    assert rows(postgres, table, "count(*)") == {(5,): 1}
