"""pytest plugin: a shared `spark` session, Delta table paths, DataFrame assertions, Postgres.

Installed with the package (entry point `pytest11`), so any project that depends on spark_flow
gets these fixtures with no conftest of its own:

    def test_loader(spark, tmp_delta_path):
        write(spark.range(3), tmp_delta_path)
        assert_df_equal(read(spark, tmp_delta_path), spark.range(3))

`postgres` gives a test a real PostgreSQL server of its own (started once per test run, on a
free 127.0.0.1 port) and makes it the configured one for `output_writer("postgres")`.
`s3_bucket` gives a test a fresh bucket on a real S3-compatible server (moto, started once per
test run on a free 127.0.0.1 port), with the AWS_* environment pointing at it.
`connect_spark` gives a test a Spark Connect session on a real Connect server of the run's own
(`connect_server`, started once on a free 127.0.0.1 port with this interpreter's packages).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql._typing import UserDefinedFunctionLike

    from spark_flow.local_connect import LocalConnectServer
    from spark_flow.local_s3 import LocalS3
    from spark_flow.postgres.local import LocalPostgres

__all__ = [
    "JobCount",
    "assert_df_equal",
    "connect_server",
    "connect_session",
    "connect_spark",
    "count_spark_jobs",
    "postgres",
    "postgres_server",
    "read_output",
    "rendezvous",
    "s3_bucket",
    "s3_server",
    "spark",
    "tmp_delta_path",
]

TEST_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local[2] session for the whole test run, Delta enabled, stopped at the end."""
    from spark_flow.session import get_session

    session = get_session("spark_flow-tests", profile="local", conf=TEST_CONF)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of the test run's own on a free 127.0.0.1 port, stopped at the end.

    Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`) and the
    `postgres` extra. Without the binaries the tests using it are skipped with the reason;
    under CI (`CI=true`) that is a failure instead, so a CI run cannot pass by skipping them.
    """
    from spark_flow.postgres.local import LocalPostgres, server_binaries

    if server_binaries() is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl); install postgresql"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason}: under CI the postgres tests must run", pytrace=False)
        pytest.skip(reason)
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def postgres(postgres_server: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> LocalPostgres:
    """The test server as the configured one: `$SPARK_FLOW_POSTGRES_DSN` and `$PGPASSWORD`."""
    from spark_flow.postgres import DSN_ENV

    monkeypatch.setenv(DSN_ENV, postgres_server.dsn)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return postgres_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """An S3-compatible server (moto) of the test run's own on a free 127.0.0.1 port.

    Needs the `dev` extra (moto[server]); without it the tests using it are skipped, except
    under CI (`CI=true`), where that is a failure.
    """
    from spark_flow.local_s3 import LocalS3

    try:
        import moto  # noqa: F401
    except ImportError:
        reason = "moto[server] is not installed (the dev extra)"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason}: under CI the object-store tests must run", pytrace=False)
        pytest.skip(reason)
    with LocalS3() as server:
        yield server


@pytest.fixture(scope="session")
def connect_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LocalConnectServer]:
    """A Spark Connect server of the test run's own on a free 127.0.0.1 port, stopped at the end.

    Its Python workers run this interpreter, so they import the spark_flow under test. It
    reaches `s3_server` (started with it where moto is installed): a Connect server reaches
    stores with its own settings, not its clients', so `s3_bucket` works on `connect_spark`.
    Needs the `connect` extra; without it the tests using it are skipped, except under CI.
    """
    from spark_flow.local_connect import LocalConnectServer

    if importlib.util.find_spec("grpc") is None:
        reason = "pyspark's Connect client is not installed (the connect extra)"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(f"{reason}: under CI the Connect tests must run", pytrace=False)
        pytest.skip(reason)
    store: dict[str, str] = {}
    if importlib.util.find_spec("moto") is not None:
        store = request.getfixturevalue("s3_server").environment()
    with LocalConnectServer(tmp_path_factory.mktemp("connect-server"), environment=store) as server:
        yield server


@pytest.fixture(scope="session")
def connect_session(connect_server: LocalConnectServer) -> Iterator[SparkSession]:
    """One Spark Connect session on `connect_server` for the test run; use `connect_spark`."""
    from spark_flow._connect import MODE_ENV
    from spark_flow.session import get_session

    before = os.environ.get(MODE_ENV)
    session = get_session(
        "spark_flow-tests", profile="local", conf={"spark.remote": connect_server.url}
    )
    # pyspark's functions build Connect columns while this is set, classic ones otherwise: it
    # is set for each test that uses `connect_spark` only, so the classic `spark` works too.
    _restore_env(MODE_ENV, before)
    yield session
    session.stop()


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture
def connect_spark(connect_session: SparkSession, monkeypatch: pytest.MonkeyPatch) -> SparkSession:
    """The run's Spark Connect session, with pyspark in Connect mode for this test."""
    from spark_flow._connect import MODE_ENV

    monkeypatch.setenv(MODE_ENV, "1")
    return connect_session


_buckets = itertools.count()


@pytest.fixture
def s3_bucket(s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the test S3 server, e.g. `s3://test-3`, with the AWS_*
    environment pointing at the server for this test (deltalake, pyarrow, obstore, boto3), and
    for `format("delta")` on a session already running (see `enable_delta`)."""
    from pyspark.sql import SparkSession as Sessions

    from spark_flow.delta import enable_delta

    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    active = Sessions.getActiveSession()
    if active is not None:
        enable_delta(active)
    return s3_server.create_bucket(f"test-{os.getpid()}-{next(_buckets)}")


@pytest.fixture
def tmp_delta_path(tmp_path: Path) -> str:
    """A fresh, not yet existing table location under the test's tmp_path."""
    return str(tmp_path / "table")


def assert_df_equal(
    actual: DataFrame,
    expected: DataFrame,
    *,
    ignore_row_order: bool = True,
    ignore_nullable: bool = True,
    ignore_column_order: bool = False,
) -> None:
    """Assert two DataFrames hold the same schema and rows (chispa's comparison, our defaults).

    Row order and nullability are ignored by default: Spark guarantees neither across plans.
    """
    from chispa import assert_df_equality

    assert_df_equality(
        actual,
        expected,
        ignore_row_order=ignore_row_order,
        ignore_nullable=ignore_nullable,
        ignore_column_order=ignore_column_order,
    )


_groups = itertools.count()


@dataclass
class JobCount:
    """How many Spark jobs ran inside a `count_spark_jobs` block (filled in at its end)."""

    group: str
    jobs: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.jobs)


@contextmanager
def count_spark_jobs(spark: SparkSession) -> Iterator[JobCount]:
    """Count the Spark jobs this thread starts inside the block (classic sessions).

    Jobs are tagged with a fresh job group and looked up in the status tracker afterwards, so
    jobs of other threads are not counted.

    Raises:
        InvalidArgumentError: `spark` is a Spark Connect session, which has no status tracker.
    """
    from spark_flow.errors import InvalidArgumentError
    from spark_flow.session import is_connect

    if is_connect(spark):
        raise InvalidArgumentError(
            "spark",
            "counting Spark jobs needs a classic session; Spark Connect has no status tracker",
            "Count jobs in a test that uses the classic `spark` fixture",
        )
    context = spark.sparkContext
    result = JobCount(group=f"spark_flow-count-{next(_groups)}")
    context.setJobGroup(result.group, "counted by spark_flow.testing")
    try:
        yield result
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description"):
            context.setLocalProperty(key, None)  # type: ignore[arg-type]
        result.jobs = list(context.statusTracker().getJobIdsForGroup(result.group))


def rendezvous(
    folder: str | Path, parties: int, *, timeout: float = 60.0
) -> UserDefinedFunctionLike:
    """A `long` UDF returning its input once `parties` Spark tasks have reached it.

    Forces concurrency in tests without guessing at timing: put it on each racer's only
    partition, and no racer gets past it until all of them got there (or `timeout` passed).
    `folder` must exist and be empty; each arrival leaves a file in it.

    Example:
        >>> arrive = rendezvous(tmp_path, parties=2)
        >>> df = spark.range(10, numPartitions=1).withColumn("id", arrive("id"))
    """
    from pyspark.sql import functions as F

    where = str(folder)

    @F.udf("long")
    def arrive(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
        import time
        import uuid
        from pathlib import Path

        arrivals = Path(where)
        (arrivals / uuid.uuid4().hex).touch()
        deadline = time.monotonic() + timeout
        while len(list(arrivals.iterdir())) < parties and time.monotonic() < deadline:
            time.sleep(0.01)
        return value

    return arrive


def read_output(spark: SparkSession, output_type: str, path: str) -> DataFrame:
    """Everything a `spark_flow.outputs` output holds, read the way its consumers would.

    File outputs are read by their manifests (on object stores too), with their `batch_id`
    column, in the schema of their first batch.
    """
    if output_type == "delta":
        from spark_flow import delta

        return delta.read(spark, path)
    from spark_flow.outputs import FileOutput

    return FileOutput(output_type).read(spark, path)
