"""`spark-flow cluster up`'s ports, checked before any JVM starts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_flow import cluster
from spark_flow._local_server import free_port
from spark_flow.errors import InvalidArgumentError


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_taken_master_port_is_refused_before_anything_starts(taken: int, tmp_path: Path) -> None:
    """Before, Spark bound the master to the next port while the worker waited for it on the
    taken one, and `cluster up` failed two minutes later with a TimeoutError (or, where
    another cluster's master listened there, the worker joined that one)."""
    with pytest.raises(InvalidArgumentError) as refused:
        cluster.start(tmp_path, port=taken, ui_port=free_port(), timeout=5)

    assert refused.value.argument == "port"
    assert f"got {taken}" in str(refused.value)
    assert not list(tmp_path.glob("*.pid"))


@pytest.mark.parametrize(("argument", "bad"), [("port", 80), ("ui_port", 0)])
def test_a_port_spark_cannot_bind_is_refused(tmp_path: Path, argument: str, bad: int) -> None:
    ports = {"port": free_port(), "ui_port": free_port(), argument: bad}

    with pytest.raises(InvalidArgumentError, match="from 1024 to 65535") as refused:
        cluster.start(tmp_path, **ports, timeout=5)

    assert refused.value.argument == argument
    assert not list(tmp_path.glob("*.pid"))
