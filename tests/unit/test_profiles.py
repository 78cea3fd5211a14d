from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from spark_flow.errors import ConfigError, MissingDependencyError
from spark_flow.session import CONF_DIR_ENV, PROFILE_ENV, get_session, load_profile, profile_name


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


@pytest.mark.parametrize(
    "delta",
    [
        'backend = "auto"\npackages = true',
        'backend = "jvm"\npackages = "yes"',
        'backend = "jvm"\npackages = 1',
    ],
)
def test_delta_packages_is_a_switch_of_the_jvm_backend(tmp_path: Path, delta: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[delta]\n{delta}\n")

    with pytest.raises(ConfigError) as caught:
        load_profile(str(bad))

    assert 'expected true (with backend = "jvm") or false' in str(caught.value)


def test_delta_packages_without_delta_spark_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "jvm.toml"
    profile.write_text('[delta]\nbackend = "jvm"\npackages = true\n')
    monkeypatch.setitem(sys.modules, "delta", None)  # as if delta-spark were not installed

    with pytest.raises(MissingDependencyError) as caught:
        get_session("no-delta-spark", profile=str(profile))

    assert caught.value.extra == "jvm"
    assert "pip install 'spark-flow[jvm]'" in str(caught.value)


@pytest.mark.skipif(find_spec("delta") is None, reason="needs the jvm extra's delta-spark")
def test_delta_packages_out_of_maven_s_reach_is_a_clear_error(tmp_path: Path) -> None:
    """Maven is out of reach here, as on many build machines: Spark's JVM exits at start."""
    profile = tmp_path / "jvm.toml"
    profile.write_text(
        'master = "local[1]"\n[spark]\n"spark.ui.enabled" = "false"\n'
        f'"spark.jars.ivy" = "{tmp_path / "ivy"}"\n'
        # An address that refuses at once: no waiting on a real repository's timeout.
        '"spark.jars.repositories" = "http://127.0.0.1:9/maven"\n'
        '[delta]\nbackend = "jvm"\npackages = true\n'
    )

    # A process of its own: in one that already has a session, getOrCreate joins it instead.
    started = subprocess.run(
        [sys.executable, "-c", "from spark_flow.session import get_session\n"
         f"get_session('maven-out-of-reach', profile={str(profile)!r})"],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300,
    )  # fmt: skip

    assert started.returncode == 1
    error = started.stderr.strip().splitlines()[-1]  # the traceback's last line: the error
    assert error.startswith("spark_flow.errors.ConfigError: ")
    assert "fetch the delta-spark JARs ([delta] packages = true) from Maven" in error
    assert 'backend = "delta-rs"' in error
