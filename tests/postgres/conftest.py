"""The postgres output's tests use the plugin's `postgres` server (spark_flow.testing).

Outside CI, a machine without the server binaries skips them with one reason; under CI
(`CI=true`) that is a failure, because `make test` installs the binaries where they lack.
"""

from __future__ import annotations

import uuid

import pytest

from spark_flow.postgres.local import LocalPostgres


@pytest.fixture
def table(postgres: LocalPostgres) -> str:
    """A table name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"
