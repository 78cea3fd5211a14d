"""Where the postgres output connects, and the errors a connection attempt can end in.

The password is never a setting: libpq finds it itself in `$PGPASSWORD` or the password file
(`~/.pgpass`, `$PGPASSFILE`), so it stays out of profiles, job arguments, reports and logs.
Executors get the password the driver's connection used inside their task (`ServerParams`), so
they need neither the variable nor the file of their own.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import conninfo

from spark_flow.errors import ConfigError, InvalidArgumentError, PostgresConnectionError

DSN_ENV = "SPARK_FLOW_POSTGRES_DSN"
APPLICATION_NAME = "spark_flow"

# What to check, by the kind of failure libpq reports.
_LOGIN = (
    "Check the user and its password: set PGPASSWORD, or add the server to ~/.pgpass (mode "
    "0600); libpq reads both."
)
_DATABASE = "Create the database (createdb NAME, or CREATE DATABASE) or name an existing one."
_UNREACHABLE = (
    "Check that the server runs and listens there (pg_isready -h HOST -p PORT), and the host "
    "and port of the settings ($SPARK_FLOW_POSTGRES_DSN, the profile's [postgres] table)."
)


@dataclass(frozen=True, kw_only=True)
class PostgresSettings:
    """How to reach a PostgreSQL server: a DSN and/or its parts, libpq's defaults for the rest.

    Keys given beside `dsn` override its parts. Whatever stays unset is libpq's: `PGHOST`,
    `PGPORT`, `PGDATABASE`, `PGUSER`, then the local socket, 5432 and the OS user.

    Attributes:
        dsn: a libpq connection string, `"host=db port=5432 dbname=shop"` or
            `"postgresql://user@db:5432/shop"`, without a password.
        host: a host name, an IP address, or a Unix-socket folder.
        port: the server's TCP port.
        dbname: the database.
        user: the role to log in as.
        connect_timeout: seconds to wait for the server before giving up.

    Example:
        >>> PostgresSettings(host="127.0.0.1", port=5432, dbname="shop", user="loader")
    """

    dsn: str = ""
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise InvalidArgumentError(
                "port", f"expected a TCP port (1-65535), got {self.port!r}", "Pass the port."
            )
        try:
            parsed = conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as exc:
            raise InvalidArgumentError(
                "dsn",
                f"not a libpq connection string: {str(exc).strip()}",
                "Write it as 'host=HOST port=PORT dbname=DB user=USER' or "
                "'postgresql://USER@HOST:PORT/DB'.",
            ) from None  # the cause would repeat the DSN, which may hold a password
        if "password" in parsed:
            raise InvalidArgumentError(
                "dsn",
                "it holds a password, which would end up in logs and reports",
                "Remove it and set PGPASSWORD, or add the server to ~/.pgpass.",
            )

    @classmethod
    def from_profile_table(cls, table: Mapping[str, Any], source: str) -> PostgresSettings:
        """Settings from a profile's `[postgres]` table; `source` names the profile in errors."""
        try:
            return cls(**dict(table))
        except (InvalidArgumentError, TypeError) as exc:
            raise ConfigError(
                source, f"[postgres]: {exc}", "Fix the table; see the README's PostgreSQL output"
            ) from exc

    @classmethod
    def configured(cls, profile: str | None = None) -> PostgresSettings:
        """The settings in effect: `$SPARK_FLOW_POSTGRES_DSN`, else the profile's `[postgres]`.

        Args:
            profile: the profile name; default `$SPARK_FLOW_PROFILE`, else `local`.
        """
        dsn = os.environ.get(DSN_ENV)
        if dsn:
            return cls(dsn=dsn)
        from spark_flow.session import load_profile, profile_name

        chosen = load_profile(profile_name(profile))
        return cls.from_profile_table(chosen.postgres, str(chosen.source))

    def params(self) -> dict[str, Any]:
        """The connection's libpq parameters, DSN and keys merged; no password."""
        given = {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user}
        params = conninfo.conninfo_to_dict(
            self.dsn, **{k: v for k, v in given.items() if v is not None}
        )
        params.setdefault("connect_timeout", self.connect_timeout)
        params.setdefault("application_name", APPLICATION_NAME)
        return params

    def describe(self) -> str:
        """`user@host:port/dbname` as libpq will resolve them; safe to log."""
        params = self.params()
        user = params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
        host = params.get("host") or os.environ.get("PGHOST") or "the local socket"
        port = params.get("port") or os.environ.get("PGPORT") or 5432
        dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
        return f"{user}@{host}:{port}/{dbname}"

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        """An autocommit connection; a failure says which server and what to check.

        Raises:
            PostgresConnectionError: the server does not answer, refuses the login, or has no
                such database.
        """
        try:
            return psycopg.connect(**self.params(), autocommit=True)
        except psycopg.OperationalError as exc:
            raise connection_error(self.describe(), exc) from exc


def connection_error(server: str, exc: psycopg.OperationalError) -> PostgresConnectionError:
    """`exc` from a failed connection attempt as our error, with advice for its kind."""
    problem = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = problem.lower()
    if "authentication" in text or "no password" in text or ('role "' in text and "exist" in text):
        fix = _LOGIN
    elif "database" in text and "does not exist" in text:
        fix = _DATABASE
    else:
        fix = _UNREACHABLE
    return PostgresConnectionError(server, problem or type(exc).__name__, fix)


@dataclass(frozen=True)
class ServerParams:
    """What an executor needs to connect as the driver did: its resolved parameters.

    The password travels inside the task (it is never logged: `repr` leaves it out), so
    executors on other machines need no `PGPASSWORD` or `.pgpass` of their own.
    """

    conninfo: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, connection: psycopg.Connection[Any]) -> ServerParams:
        info = connection.info
        return cls(conninfo.make_conninfo(**info.get_parameters()), info.password)

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self.password is None:
            return psycopg.connect(self.conninfo)
        return psycopg.connect(self.conninfo, password=self.password)
