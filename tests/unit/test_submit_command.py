"""`spark-flow submit`'s command line and the zip it ships, built without starting Spark."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from spark_flow.jobs import resolve
from spark_flow.submit import package_zip, spark_home, submit_command


def test_the_package_zip_is_laid_out_as_the_wheel_is(tmp_path: Path) -> None:
    names = zipfile.ZipFile(package_zip(tmp_path)).namelist()

    assert {
        "spark_flow/__init__.py",
        "spark_flow/conf/local.toml",
        "spark_flow/conf/log4j2.properties",
        "spark_flow/_jobs/devices_loader.py",
        "spark_flow/_jobs/_schemas.py",
    } <= set(names)
    assert not [name for name in names if "__pycache__" in name]


def test_code_imported_from_the_zip_finds_its_profiles_and_jobs(tmp_path: Path) -> None:
    """What a driver or executor sees with only `--py-files spark_flow.zip`: no folder on disk."""
    shipped = package_zip(tmp_path)
    probe = (
        "import spark_flow, json\n"
        "from spark_flow.session import load_profile\n"
        "from spark_flow.jobs import load, resolve\n"
        "profile = load_profile('local')\n"
        "log4j = profile.spark_conf['spark.driver.extraJavaOptions'].split('file:')[1]\n"
        "load('visits_cube')\n"  # imports its siblings _schemas and _recipes
        "print(json.dumps([spark_flow.__file__, str(profile.source), open(log4j).read()[:1],"
        " str(resolve('devices_loader'))]))\n"
    )
    # -S: no site-packages .pth files, so not the checkout's editable install; its
    # dependencies still come from this environment's site-packages.
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={"PYTHONPATH": f"{shipped}:{sysconfig.get_paths()['purelib']}"},
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    package, profile, log4j, job = json.loads(result.stdout)
    assert package.startswith(str(shipped))
    checkout = str(Path(resolve("devices_loader")).parent.parent)
    assert not profile.startswith(checkout)
    assert profile.endswith("local.toml")
    assert log4j  # {conf_dir} names a real folder that holds the log4j file
    assert Path(job).name == "devices_loader.py"
    assert not job.startswith(checkout)


def test_a_cluster_run_ships_the_package_and_keeps_the_driver_on_this_python(
    tmp_path: Path,
) -> None:
    script = tmp_path / "job.py"
    options = ["--master", "spark://h:7077", "--py-files", "a.zip",
               "--conf", "spark.pyspark.python=./env/bin/python"]  # fmt: skip

    command = submit_command(script, options, ["--x", "1"], ship=tmp_path / "spark_flow.zip")

    assert command[0] == str(spark_home() / "bin" / "spark-submit")
    assert command[-3:] == [str(script), "--x", "1"]
    assert command[command.index("--py-files") + 1] == f"a.zip,{tmp_path / 'spark_flow.zip'}"
    assert f"spark.pyspark.driver.python={sys.executable}" in command


@pytest.fixture
def cluster_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile naming a cluster's master, and spark-submit's defaults naming none."""
    for name in ("MASTER", "SPARK_CONF_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "spark-conf"))  # no spark-defaults.conf
    profile = tmp_path / "prod.toml"
    profile.write_text('master = "spark://h:7077"\n')
    return profile


def test_the_profile_s_master_reaches_spark_submit_where_nothing_else_names_one(
    cluster_profile: Path, tmp_path: Path
) -> None:
    """Without it spark-submit runs local[*], which the session cannot tell from a typed
    `--master local[*]`: the profile's cluster was silently replaced by this machine."""
    script = tmp_path / "job.py"
    profile = str(cluster_profile)

    command = submit_command(script, [], [], profile=profile)

    assert command[command.index("--master") + 1] == "spark://h:7077"
    assert command[-1] == str(script)


@pytest.mark.parametrize(
    ("options", "defaults", "profile_s"),
    [
        (["--master", "local[2]"], "", False),
        (["--conf", "spark.master=local[3]"], "", False),
        ([], "spark.master  spark://other:7077\n", False),
        ([], "# spark.master spark://commented:7077\n", True),
    ],
)
def test_what_the_command_line_or_spark_s_defaults_name_wins_over_the_profile(
    cluster_profile: Path, tmp_path: Path, options: list[str], defaults: str, profile_s: bool
) -> None:
    conf = tmp_path / "spark-conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(defaults)

    command = submit_command(tmp_path / "job.py", options, [], profile=str(cluster_profile))

    assert ("spark://h:7077" in command) is profile_s
    assert [v for v in options if v in command] == options
