"""Bundled jobs submitted to a real Spark standalone cluster (master + worker on 127.0.0.1).

Three ways code reaches the executors: `spark-flow submit` (a zip of the package on
`--py-files`), the wheel on `--py-files` from a Python that does not have spark_flow, and a
whole environment shipped with `--archives` whose Python the executors run. And a bucket that
only the driver knows how to reach, from variables it set after its session started.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _jobs import BIN, ENV, JOBS, reports, run, table_rows

from spark_flow import storage
from spark_flow._common import pid_alive
from spark_flow.local_s3 import LocalS3
from spark_flow.markers import wait_until_ready
from spark_flow.submit import spark_home

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
SPARK_FLOW = str(BIN / "spark-flow")
ROOT = JOBS.parent
# Built environments are kept beside the virtualenv's own files (`make clean` removes them):
# packing one takes a while, and it changes only with the wheel.
ARCHIVES = Path(sys.prefix) / "spark-flow-cache"
EXECUTOR = ["--total-executor-cores", "2", "--executor-memory", "1g"]


def free_port(*, with_next: bool = False) -> int:
    """A port free on 127.0.0.1 now; `with_next`: one whose next port is free too (the worker's
    UI takes the master UI's port + 1)."""
    while True:
        with socket.socket() as probe, socket.socket() as after:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            if not with_next:
                return port
            try:
                after.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("cluster")
    up = run(SPARK_FLOW, "cluster", "up", "--dir", str(folder), "--port", str(free_port()),
             "--ui-port", str(free_port(with_next=True)))  # fmt: skip
    pids = [int(p.read_text()) for p in folder.glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield up.stdout.strip(), folder
    finally:  # also when the test failed: no JVM outlives the suite
        down = run(SPARK_FLOW, "cluster", "down", "--dir", str(folder))
        assert down.returncode == 0, down.stderr
        assert not [pid for pid in pids if pid_alive(pid)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spark_flow's wheel, as `make package` builds it."""
    folder = tmp_path_factory.mktemp("dist")
    built = run(str(BIN / "pip"), "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder),
                str(ROOT))  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = folder.glob("spark_flow-*.whl")
    return path


@pytest.fixture(scope="module")
def python_without_spark_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This environment's Python and packages without spark_flow: no .pth file (the editable
    install) is read, so only what is on PYTHONPATH, e.g. `--py-files`, brings it."""
    wrapper = tmp_path_factory.mktemp("bare") / "python"
    site = sysconfig.get_paths()["purelib"]
    path = f"${{PYTHONPATH:+$PYTHONPATH:}}{site}"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec {sys.executable} -S "$@"\n')
    wrapper.chmod(0o755)
    # Run from elsewhere than the checkout: a script's (or -c's) folder is on sys.path first.
    # (The editable install leaves copies of conf/ and jobs/ in site-packages/spark_flow: a
    # namespace package without code, which any real spark_flow on the path shadows.)
    probe = subprocess.run([wrapper, "-c", "import pyspark, spark_flow.jobs"], capture_output=True,
                           text=True, check=False, cwd=wrapper.parent)  # fmt: skip
    assert "No module named 'spark_flow.jobs'" in probe.stderr
    return wrapper


@pytest.fixture(scope="module")
def env_archive(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the wheel and its dependencies, packed by venv-pack; cached by wheel.

    pyspark stays out: executors import the cluster's own (Spark puts it first on their
    PYTHONPATH), and it would make the archive four times the size.
    """
    key = hashlib.sha256(wheel.read_bytes() + sys.version.encode()).hexdigest()[:16]
    archive = ARCHIVES / f"cluster-env-{key}.tar.gz"
    if archive.exists():
        return archive
    env = tmp_path_factory.mktemp("env") / "env"
    with zipfile.ZipFile(wheel) as packed:
        (metadata,) = (n for n in packed.namelist() if n.endswith(".dist-info/METADATA"))
        requires = email.message_from_bytes(packed.read(metadata)).get_all("Requires-Dist", [])
    needs = [r for r in requires if "extra ==" not in r and not r.startswith("pyspark")]
    pip = str(env / "bin" / "pip")
    building = ARCHIVES / f"building-{key}.tar.gz"  # venv-pack infers the format from the name
    pack = [str(BIN / "venv-pack"), "--quiet", "--force", "-p", str(env), "-o", str(building)]
    ARCHIVES.mkdir(exist_ok=True)
    for command in ([sys.executable, "-m", "venv", str(env)],
                    [pip, "install", "--quiet", "--no-deps", str(wheel)],
                    [pip, "install", "--quiet", *needs], pack):  # fmt: skip
        done = run(*command)
        assert done.returncode == 0, done.stderr[-3000:]
    for stale in ARCHIVES.glob("cluster-env-*.tar.gz"):
        stale.unlink()
    os.replace(building, archive)
    shutil.rmtree(env)
    return archive


def generated_devices(folder: Path, rows: int = 200) -> int:
    """Devices with 10% invalid rows in `folder`; the number of valid ones."""
    made = run(SPARK_FLOW, "generate", "devices", "--rows", str(rows), "--invalid-ratio", "0.1",
               "--seed", "3", "--output", str(folder))  # fmt: skip
    assert made.returncode == 0, made.stderr
    return sum(
        1
        for line in (folder / "devices.json").read_text().splitlines()
        if len((d := json.loads(line))["type"]) > 3 and d["full_name"] is not None
    )


def submit_to(url: str, job: str, *args: str) -> dict[str, object]:
    result = run(SPARK_FLOW, "submit", job, "--profile", "cluster", "--master", url, *EXECUTOR,
                 "--", *args)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = reports(result.stdout)
    return report


def test_the_cluster_is_one_master_and_one_worker_on_localhost(
    cluster: tuple[str, Path],
) -> None:
    url, folder = cluster
    assert url.startswith("spark://127.0.0.1:")
    assert sorted(p.name for p in folder.glob("*.pid")) == ["master.pid", "worker.pid"]


def test_bundled_jobs_run_on_the_cluster_executors(
    cluster: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = cluster
    devices = tmp_path / "devices"
    valid = generated_devices(devices)
    loaded = submit_to(url, "devices_loader", "--input", str(devices),
                       "--output", str(tmp_path / "loaded"), "--batch-id", "1",
                       "--checkpoint-dir", str(tmp_path / "checkpoints"))  # fmt: skip
    assert loaded["rows_written"] == valid
    assert table_rows(tmp_path / "loaded", "SELECT count(*) AS n FROM t")[0]["n"] == valid

    split = submit_to(url, "devices_split_loader", "--input", str(devices),
                      "--raw-output", str(tmp_path / "raw"), "--batch-id", "1",
                      "--enriched-output", str(tmp_path / "enriched"))  # fmt: skip
    branches = split["branches"]
    assert isinstance(branches, list)
    assert [b["status"] for b in branches] == ["success", "success", "success"]  # + quarantine
    assert table_rows(tmp_path / "enriched", "SELECT count(*) AS n FROM t")[0]["n"] == 200

    visits = tmp_path / "visits"
    made = run(SPARK_FLOW, "generate", "visits", "--date", "2024-03-10", "--rows-per-hour", "20",
               "--skip-hours", "3,7", "--output", str(visits))  # fmt: skip
    assert made.returncode == 0, made.stderr
    cube = submit_to(url, "visits_cube", "--input", str(visits), "--date", "2024-03-10",
                     "--output", str(tmp_path / "cube"), "--mode", "unaligned")  # fmt: skip
    assert cube["hours_present"] == 22
    (total,) = table_rows(
        tmp_path / "cube",
        "SELECT visits FROM t WHERE page IS NULL AND browser IS NULL AND country IS NULL",
    )
    assert total["visits"] == 22 * 20

    # The work ran in executors the worker launched, one folder per application.
    assert len(list((folder / "work").glob("app-*"))) >= 3


def test_a_bundled_job_runs_from_the_wheel_s_zip_on_py_files(
    cluster: tuple[str, Path], wheel: Path, python_without_spark_flow: Path, tmp_path: Path
) -> None:
    """The README's spark-submit: the driver and executors import spark_flow from the wheel's
    contents only (as `make package`'s zip: pyspark puts no `.whl` on the executors' path),
    and its profiles and the job's siblings come with it. The loader's routed write runs
    spark_flow code in the executors' Python workers."""
    url, _ = cluster
    valid = generated_devices(tmp_path / "devices")
    python = str(python_without_spark_flow)
    home = spark_home()
    shipped = tmp_path / "spark_flow.zip"
    shutil.copyfile(wheel, shipped)
    result = subprocess.run(
        [str(home / "bin" / "spark-submit"), "--master", url, *EXECUTOR, "--py-files", str(shipped),
         str(JOBS / "devices_loader.py"), "--input", str(tmp_path / "devices"),
         "--output", str(tmp_path / "loaded"), "--batch-id", "1"],
        env={**ENV, "SPARK_HOME": str(home), "PYSPARK_PYTHON": python,
             "PYSPARK_DRIVER_PYTHON": python, "SPARK_FLOW_PROFILE": "cluster"},
        capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = reports(result.stdout)
    assert report["rows_written"] == valid
    assert table_rows(tmp_path / "loaded", "SELECT count(*) AS n FROM t") == [{"n": valid}]


def test_executors_run_the_python_of_an_environment_shipped_as_an_archive(
    cluster: tuple[str, Path], env_archive: Path, tmp_path: Path
) -> None:
    url, folder = cluster
    valid = generated_devices(tmp_path / "devices")

    result = run(
        SPARK_FLOW, "submit", str(Path(__file__).parent / "_executor_python.py"),
        "--profile", "cluster", "--master", url, *EXECUTOR,
        "--archives", f"{env_archive}#env", "--conf", "spark.pyspark.python=./env/bin/python",
        "--", "devices_loader", "--input", str(tmp_path / "devices"),
        "--output", str(tmp_path / "loaded"), "--batch-id", "1",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    pythons, report = reports(result.stdout)
    executor_pythons = pythons["executor_pythons"]
    assert isinstance(executor_pythons, list)
    assert executor_pythons
    for executable, prefix in executor_pythons:
        # The archive, unpacked in the executor's folder under the worker's work dir.
        assert executable.endswith("/env/bin/python")
        assert prefix.startswith(str(folder / "work"))
        assert prefix.rstrip("/").endswith("env")
    assert report["rows_written"] == valid


def test_executors_reach_a_bucket_only_the_driver_was_told_about_after_it_started(
    cluster: tuple[str, Path], s3_server: LocalS3, s3_bucket: str
) -> None:
    """The store variables reach neither the worker (the cluster started without them) nor
    the driver's JVM: the job sets them once its session runs, as a notebook cell would. The
    executors' Python workers write and read the files (spark_flow.delta, format("delta"), a
    Parallel Split's Delta and Parquet branches) with the driver's settings, a zoneless
    timestampAsOf is read in the session's zone, and another process waits for the marker."""
    url, _ = cluster
    assert not set(s3_server.environment()) & set(ENV)  # neither process has them

    result = run(
        SPARK_FLOW, "submit", str(Path(__file__).parent / "_cluster_store.py"),
        "--profile", "cluster", "--master", url, *EXECUTOR,
        "--", s3_bucket, json.dumps(s3_server.environment()),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    (seen,) = reports(result.stdout)
    assert seen == {
        "write": [True, 6, False],
        "devices": 6,
        "events": 8,
        "events_at_v0": 6,
        "events_version": 1,
        "split": {"a": ["success", 6], "b": ["success", 6]},
    }
    marker = wait_until_ready(f"{s3_bucket}/devices", timeout=30, poke_interval=1)
    assert (marker.run_id, marker.table_version) == ("cluster", 0)
    assert storage.list_files(f"{s3_bucket}/split_b", recursive=True)
