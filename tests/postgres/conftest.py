"""A real PostgreSQL server for the postgres output's tests: started once, stopped at the end.

Outside CI, a machine without the server binaries skips these tests with one reason; under CI
(`CI=true`) that is a failure, because `make test` installs the binaries where they lack.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from spark_flow.postgres import DSN_ENV
from spark_flow.postgres.local import LocalPostgres, server_binaries


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of the test run's own on a free 127.0.0.1 port."""
    if server_binaries() is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl); `make test` installs them"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason}, and under CI the postgres tests must run", pytrace=False)
        pytest.skip(reason)
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def postgres(postgres_server: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> LocalPostgres:
    """The server as the configured one: `$SPARK_FLOW_POSTGRES_DSN` and `$PGPASSWORD` name it."""
    monkeypatch.setenv(DSN_ENV, postgres_server.dsn)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return postgres_server


@pytest.fixture
def table(postgres: LocalPostgres) -> str:
    """A table name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"
