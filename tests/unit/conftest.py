"""Fixtures for running jobs in this process without a JVM."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _probe import ECHO_JOB, PROBE_JOB, FakeSession

from spark_flow.jobs import JOBS_DIR_ENV
from spark_flow.runners.state import STATE_ENV


@pytest.fixture
def fake_spark(monkeypatch: pytest.MonkeyPatch) -> list[FakeSession]:
    """Every session `get_session` hands out in this test, in order; none starts a JVM."""
    started: list[FakeSession] = []

    def get_session(app_name: str, profile: str | None = None, conf: object = None) -> object:
        started.append(FakeSession())
        return started[-1]

    monkeypatch.setattr("spark_flow.session.get_session", get_session)
    return started


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_spark: list[FakeSession]) -> str:
    """Jobs `probe` and `echo` in a jobs folder of their own, and a run-state store of its own."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(PROBE_JOB))
    (folder / "echo.py").write_text(textwrap.dedent(ECHO_JOB))
    monkeypatch.setenv(JOBS_DIR_ENV, str(folder))
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))
    return "probe"
