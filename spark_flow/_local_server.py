"""What the local servers the tests start (S3, Spark Connect, PostgreSQL) share.

Each binds 127.0.0.1 only, on a port the kernel hands out, and is a context manager that stops
its server however the block ends.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TypeVar

HOST = "127.0.0.1"
_Server = TypeVar("_Server", bound="LocalServer")


def free_port() -> int:
    """A port free on 127.0.0.1 now (the server binds it next; callers retry on a lost race)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class LocalServer(ABC):
    """A server started by `start()` and stopped by `stop()`, or by leaving a `with` block."""

    @abstractmethod
    def start(self) -> LocalServer:
        """Start the server and wait until it answers; the server."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server; safe to call twice."""

    def __enter__(self: _Server) -> _Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
