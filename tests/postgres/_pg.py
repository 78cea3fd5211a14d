"""Reading what the postgres output wrote, straight from the server."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg

from spark_flow.postgres.local import LocalPostgres


def query(server: LocalPostgres, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.dsn, password=server.password) as connection:
        return connection.execute(statement, params or None).fetchall()


def execute(server: LocalPostgres, statement: str) -> None:
    with psycopg.connect(server.dsn, password=server.password, autocommit=True) as connection:
        connection.execute(statement)


def rows(server: LocalPostgres, table: str, columns: str = "*") -> Counter[tuple[Any, ...]]:
    """The table's rows, counted: a row written twice counts 2."""
    return Counter(query(server, f"SELECT {columns} FROM {table}"))


def staging_tables(server: LocalPostgres) -> list[str]:
    return [
        name
        for (name,) in query(
            server, "SELECT relname FROM pg_class WHERE starts_with(relname, 'spark_flow_stage_')"
        )
    ]
