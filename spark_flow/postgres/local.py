"""A throwaway PostgreSQL server on 127.0.0.1: for tests, benchmarks and trying the output.

`initdb` in a fresh temporary folder, `pg_ctl start` on a free port with the Unix socket in
that folder, then a login role with a password and a database it owns. `stop()` stops exactly
that server and removes the folder. PostgreSQL refuses to run as root, so under root the
server runs as the `postgres` system user (Debian's package creates it).

Durability is off (`fsync=off`): the data is gone with the folder anyway.

    with LocalPostgres() as server:
        os.environ["PGPASSWORD"] = server.password
        output_writer("postgres").write(df, "devices", app_id="try", txn_version=1)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from spark_flow._local_server import LocalServer, free_port
from spark_flow.errors import InvalidArgumentError
from spark_flow.postgres._settings import PostgresSettings

__all__ = ["LocalPostgres", "server_binaries"]

log = logging.getLogger(__name__)

SYSTEM_USER = "postgres"
_PORT_ATTEMPTS = 3


def server_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: on PATH, else Debian's newest, else None."""
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).parent / "pg_ctl").exists():
        return Path(on_path).parent
    debian = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in debian.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
    )
    return versions[-1] if versions else None


@dataclass
class LocalPostgres(LocalServer):
    """A PostgreSQL server of its own in a temporary folder, on a free 127.0.0.1 port.

    Attributes:
        user: the login role created for clients (not a superuser).
        dbname: the database created for it.
        password: the role's password (random by default).
        port: the port, once started.
        folder: the server's folder (data, socket, log), once started.
    """

    user: str = "spark_flow"
    dbname: str = "spark_flow"
    password: str = field(default_factory=lambda: secrets.token_hex(12), repr=False)
    port: int = 0
    folder: Path | None = None

    @property
    def dsn(self) -> str:
        """The libpq connection string of the created role and database (no password)."""
        return f"host=127.0.0.1 port={self.port} dbname={self.dbname} user={self.user}"

    def settings(self) -> PostgresSettings:
        return PostgresSettings(dsn=self.dsn)

    def start(self) -> LocalPostgres:
        """initdb, start, create the role and database; the server runs until `stop()`.

        Raises:
            InvalidArgumentError: no server binaries are installed.
            subprocess.CalledProcessError: initdb or pg_ctl failed (their output is logged).
        """
        binaries = server_binaries()
        if binaries is None:
            raise InvalidArgumentError(
                "PostgreSQL",
                "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin",
                "Install the server (Debian: apt-get install postgresql).",
            )
        self.folder = folder = Path(tempfile.mkdtemp(prefix="spark_flow_pg_"))
        try:
            if os.geteuid() == 0:
                shutil.chown(folder, SYSTEM_USER, SYSTEM_USER)
            _run(binaries / "initdb", "-D", folder / "data", "-U", "postgres",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--no-locale", "--no-instructions")  # fmt: skip
            self._start_on_a_free_port(binaries, folder)
            self._create_role_and_database(folder)
        except BaseException:
            self.stop()
            raise
        log.info("PostgreSQL running on 127.0.0.1:%d (folder %s)", self.port, self.folder)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder; safe to call twice."""
        if self.folder is None:
            return
        binaries = server_binaries()
        if binaries is not None and (self.folder / "data" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                _run(binaries / "pg_ctl", "stop", "-D", self.folder / "data", "-m", "fast", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def _start_on_a_free_port(self, binaries: Path, folder: Path) -> None:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                _run(binaries / "pg_ctl", "start", "-w", "-D", folder / "data",
                     "-l", folder / "server.log", "-o", options)  # fmt: skip
                return
            except subprocess.CalledProcessError:
                # Another process may have taken the port between our probe and the start.
                if attempt == _PORT_ATTEMPTS:
                    log.error("%s", (folder / "server.log").read_text(errors="replace"))
                    raise

    def _create_role_and_database(self, folder: Path) -> None:
        with psycopg.connect(
            host=str(folder), port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.dbname), sql.Identifier(self.user)
                )
            )


def _run(*command: str | Path) -> None:
    """Run a server command, as the `postgres` system user when we are root."""
    as_user = ["runuser", "-u", SYSTEM_USER, "--"] if os.geteuid() == 0 else []
    try:
        subprocess.run(
            [*as_user, *map(str, command)], check=True, capture_output=True, text=True, cwd="/"
        )
    except subprocess.CalledProcessError as failed:
        log.error("%s failed: %s", Path(command[0]).name, (failed.stderr or failed.stdout).strip())
        raise
