from __future__ import annotations

from pathlib import Path

import pytest

from spark_flow.errors import ConfigError
from spark_flow.session import CONF_DIR_ENV, PROFILE_ENV, load_profile, profile_name


def test_local_profile_is_embedded_quiet_and_points_log4j_at_its_own_folder() -> None:
    profile = load_profile("local")

    assert profile.master == "local[*]"
    assert profile.spark_conf["spark.ui.enabled"] == "false"
    assert profile.spark_conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    log4j = profile.spark_conf["spark.driver.extraJavaOptions"]
    assert str(profile.source.parent.resolve()) in log4j
    assert Path(log4j.split("file:")[1]).is_file()


def test_cluster_profile_leaves_the_master_to_spark_submit() -> None:
    assert load_profile("cluster").master is None


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("lcoal")

    assert "'cluster', 'local'" in str(caught.value)


def test_unknown_keys_in_a_profile_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('master = "local[1]"\nsprak = {}\n[delta]\nbackend = "auto"\nmode = "x"\n')

    with pytest.raises(ConfigError) as caught:
        load_profile(str(bad))

    assert "['sprak']" in str(caught.value)


def test_conf_dir_from_the_environment_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local.toml").write_text('master = "local[1]"\n')
    monkeypatch.setenv(CONF_DIR_ENV, str(tmp_path))

    assert load_profile("local").master == "local[1]"


def test_profile_argument_then_environment_then_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert profile_name() == "local"
    monkeypatch.setenv(PROFILE_ENV, "cluster")
    assert profile_name() == "cluster"
    assert profile_name("local") == "local"
