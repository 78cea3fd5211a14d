"""Where the postgres output connects: profiles, the DSN variable, passwords kept out of sight."""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
from pathlib import Path

import pytest

from spark_flow.errors import (
    ConfigError,
    InvalidArgumentError,
    MissingDependencyError,
    UnknownValueError,
)
from spark_flow.postgres import DSN_ENV, PostgresOutput, PostgresSettings
from spark_flow.postgres._settings import ServerParams
from spark_flow.session import load_profile


def profile(tmp_path: Path, postgres_table: str) -> str:
    path = tmp_path / "pg.toml"
    path.write_text(f'master = "local[1]"\n[postgres]\n{postgres_table}\n')
    return str(path)


def test_the_profiles_postgres_table_gives_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    path = profile(tmp_path, 'host = "db.internal"\nport = 6432\ndbname = "shop"\nuser = "loader"')

    settings = PostgresSettings.configured(path)

    assert load_profile(path).postgres == {
        "host": "db.internal", "port": 6432, "dbname": "shop", "user": "loader"
    }  # fmt: skip
    assert settings.describe() == "loader@db.internal:6432/shop"


def test_the_dsn_variable_wins_over_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DSN_ENV, "postgresql://etl@10.0.0.5:5433/warehouse")

    settings = PostgresSettings.configured(profile(tmp_path, 'host = "db.internal"'))

    assert settings.describe() == "etl@10.0.0.5:5433/warehouse"


def test_keys_beside_a_dsn_override_its_parts() -> None:
    settings = PostgresSettings(dsn="host=a port=1 dbname=x user=u", dbname="y", port=2)

    assert settings.describe() == "u@a:2/y"


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('password = "s3cret"', "PGPASSWORD"),
        ('hots = "db"', "['postgres.hots']"),
        ('port = "many"', "expected a TCP port"),
    ],
)
def test_a_bad_postgres_table_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, fragment: str
) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)

    with pytest.raises(ConfigError) as caught:
        PostgresSettings.configured(profile(tmp_path, table))

    assert fragment in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_password_executors_receive_is_never_shown() -> None:
    params = ServerParams("host=127.0.0.1 port=5432", password="s3cret")

    assert "s3cret" not in repr(params)
    assert pickle.loads(pickle.dumps(params)).password == "s3cret"  # it travels in the task


def test_writer_options_fail_when_defined() -> None:
    with pytest.raises(InvalidArgumentError, match="expected a TCP port"):
        PostgresSettings(port=70000)
    with pytest.raises(UnknownValueError, match="'append', 'overwrite'"):
        PostgresOutput(mode="upsert")  # type: ignore[arg-type]


def test_without_psycopg_the_postgres_module_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psycopg" else real_find_spec(name, *a),
    )
    for name in [m for m in sys.modules if m.startswith("spark_flow.postgres")]:
        monkeypatch.delitem(sys.modules, name)

    with pytest.raises(MissingDependencyError) as caught:
        importlib.import_module("spark_flow.postgres")

    assert caught.value.extra == "postgres"
    assert "pip install 'spark-flow[postgres]'" in str(caught.value)


@pytest.mark.parametrize("txn_version", [-1, 2**63])
def test_a_batch_outside_a_bigint_is_refused_before_connecting(txn_version: int) -> None:
    # No server is configured here: the refusal comes before any connection is tried.
    with pytest.raises(InvalidArgumentError) as caught:
        PostgresOutput().written("devices", app_id="loader", txn_version=txn_version)

    assert caught.value.argument == "txn_version"
    assert str(txn_version) in caught.value.problem
