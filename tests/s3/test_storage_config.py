"""Where object stores are reached: a profile's `[storage]` table, the environment, and the
errors a bad configuration gets on the driver, before any Spark job."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from _s3_tables import table_rows
from pyspark.sql import SparkSession

from spark_flow import _store_settings, delta, markers, storage
from spark_flow.errors import ConfigError, InvalidArgumentError, StorageError
from spark_flow.local_s3 import LocalS3
from spark_flow.runners import RunState, SingleRunner
from spark_flow.session import load_profile
from spark_flow.testing import count_spark_jobs

_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ALLOW_HTTP", "AWS_REGION")


@pytest.fixture
def configured() -> Iterator[None]:
    """Restores the process's storage settings after a test that configures its own."""
    yield
    storage.configure(storage.StorageSettings())


@pytest.fixture
def profile_only(
    s3_bucket: str, s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch, configured: None
) -> str:
    """The bucket, reachable only through the configured settings: no endpoint variables."""
    for name in (*_ENVIRONMENT, "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    storage.configure(
        storage.StorageSettings(endpoint=s3_server.endpoint, region="eu-west-3", allow_http=True)
    )
    return s3_bucket


def test_the_settings_reach_each_client_in_its_own_terms(
    profile_only: str, s3_server: LocalS3
) -> None:
    endpoint = s3_server.endpoint

    assert storage.options(profile_only) == {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "eu-west-3",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    pyarrow = storage.options(profile_only, client="pyarrow")
    assert (pyarrow["endpoint_override"], pyarrow["scheme"], pyarrow["region"]) == (
        endpoint,
        "http",
        "eu-west-3",
    )
    obstore = storage.options(profile_only, client="obstore")
    assert obstore["config"]["endpoint"] == endpoint
    assert obstore["client_options"] == {"allow_http": True}
    assert storage.options("gs://bucket/t") == {}
    assert storage.options("/data/t") == {}


def test_the_environment_wins_over_the_profile(
    profile_only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.org")
    monkeypatch.setenv("AWS_REGION", "us-west-2")

    assert storage.options(profile_only)["AWS_ENDPOINT_URL"] == "https://s3.example.org"
    assert storage.options(profile_only, client="pyarrow")["region"] == "us-west-2"


def test_a_profile_endpoint_alone_reaches_the_store_from_every_client(
    spark: SparkSession, profile_only: str
) -> None:
    import obstore
    from obstore.store import from_url

    table = f"{profile_only}/configured"

    result = delta.write(spark.range(3), table, app_id="loader", txn_version=1)

    assert result.committed
    assert [row["id"] for row in table_rows(table)] == [0, 1, 2]
    assert delta.already_committed(table, app_id="loader", txn_version=1) is not None
    store = from_url(profile_only, **storage.options(profile_only, client="obstore"))
    listed = {item["path"] for batch in obstore.list(store, "configured/") for item in batch}
    assert {f"configured/{name}" for name in result.files} <= listed


def test_a_profile_storage_table_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "store.toml"
    good.write_text('[storage]\nendpoint = "http://127.0.0.1:9000"\nallow_http = true\n')
    bad_key = tmp_path / "typo.toml"
    bad_key.write_text('[storage]\nendpont = "http://127.0.0.1:9000"\n')
    bad_value = tmp_path / "quoted.toml"
    bad_value.write_text('[storage]\nallow_http = "yes"\n')

    assert load_profile(str(good)).storage == storage.StorageSettings(
        endpoint="http://127.0.0.1:9000", allow_http=True
    )
    with pytest.raises(ConfigError, match=r"\['storage.endpont'\]"):
        load_profile(str(bad_key))
    with pytest.raises(ConfigError, match="allow_http: expected true or false") as caught:
        load_profile(str(bad_value))
    assert caught.value.source == str(bad_value)


def test_an_unknown_bucket_is_reported_before_any_spark_job(
    spark: SparkSession, s3_bucket: str
) -> None:
    with count_spark_jobs(spark) as jobs, pytest.raises(StorageError) as caught:
        delta.write(spark.range(3), "s3://no-such-bucket/devices")

    assert jobs.count == 0
    assert "bucket 'no-such-bucket' does not exist at http://127.0.0.1:" in caught.value.cause


def test_missing_credentials_are_reported_before_any_spark_job(
    spark: SparkSession, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    with count_spark_jobs(spark) as jobs, pytest.raises(StorageError) as caught:
        delta.write(spark.range(3), f"{s3_bucket}/devices")

    assert jobs.count == 0
    assert caught.value.cause.startswith("no AWS credentials")


def test_an_aws_profile_without_keys_is_named_as_giving_none(
    s3_bucket: str, aws_profile: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AWS_PROFILE set was taken for credentials found, so deltalake and obstore went on to ask
    an instance metadata service the environment had disabled."""
    (tmp_path / "credentials").write_text("")

    with pytest.raises(StorageError) as caught:
        storage.check_reachable(f"{s3_bucket}/devices")

    assert caught.value.cause.startswith("no AWS credentials")
    assert f"the AWS profile {aws_profile!r} gives no keys" in caught.value.cause


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("ftp://host/devices", "no object store is known for ftp://"),
        ("hdfs://namenode/devices", "the supported schemes are ['abfs', 'abfss'"),
    ],
)
def test_an_unsupported_scheme_is_reported_before_any_spark_job(
    spark: SparkSession, path: str, fragment: str
) -> None:
    with count_spark_jobs(spark) as jobs, pytest.raises(StorageError) as caught:
        delta.write(spark.range(3), path)

    assert jobs.count == 0
    assert fragment in caught.value.cause


def test_a_plain_http_endpoint_needs_allow_http(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ALLOW_HTTP")

    with pytest.raises(StorageError, match="set allow_http = true"):
        delta.table_info(f"{s3_bucket}/devices")


@pytest.mark.parametrize("spelling", ["1", "Yes"])
def test_allow_http_is_read_in_the_spellings_the_clients_take(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.setenv("AWS_ALLOW_HTTP", spelling)  # a compose file's `AWS_ALLOW_HTTP: 1`

    assert delta.table_info(f"{s3_bucket}/devices") is None
    assert storage.options(s3_bucket)["AWS_ALLOW_HTTP"] == "true"


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_an_endpoint_variable_without_its_scheme_is_named(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """MinIO's docs write host:port; pyarrow called that a bad scheme and obstore panicked."""
    endpoint = os.environ["AWS_ENDPOINT_URL"].removeprefix("http://")
    monkeypatch.setenv(variable, endpoint)

    with pytest.raises(StorageError) as caught:
        markers.wait_until_ready(f"{s3_bucket}/devices", timeout=0)

    assert f"the endpoint {endpoint!r} is no http:// or https:// URL" in caught.value.cause
    assert f"http://{endpoint}" in caught.value.cause


def test_a_profile_endpoint_alone_reaches_the_readers_python_workers(
    spark: SparkSession, profile_only: str
) -> None:
    # Spark's Python workers never saw configure(): the driver hands them the settings.
    table = f"{profile_only}/read-back"
    delta.write(spark.range(3), table, app_id="loader", txn_version=1)

    assert sorted(row.id for row in delta.read(spark, table).collect()) == [0, 1, 2]
    assert (
        storage.store_environment()["AWS_ENDPOINT_URL"]
        == storage.options(table)["AWS_ENDPOINT_URL"]
    )


def test_an_endpoint_gone_after_the_first_read_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    with LocalS3() as server:  # a server of this test's own, to stop halfway
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        table = f"{server.create_bucket('gone')}/devices"
        write_deltalake(table, pa.table({"id": [1]}), storage_options=storage.options(table))
        assert delta.table_info(table) is not None
    with pytest.raises(StorageError) as caught:
        delta.table_info(table)

    # one line naming where it could not connect, not deltalake's chain of coloured lines
    assert f"127.0.0.1:{server.port}" in caught.value.cause
    assert "\n" not in caught.value.cause
    assert "\x1b[" not in caught.value.cause


def test_refused_credentials_are_named_by_the_request_they_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # moto checks keys after its first two requests (creating the bucket): ours are unknown
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "2")
    with LocalS3() as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        bucket = server.create_bucket("refused")
        with pytest.raises(StorageError) as table:
            delta.table_info(f"{bucket}/devices")
        with pytest.raises(StorageError) as history:
            RunState(f"{bucket}/state").history("loader")

    # not HeadBucket's bodiless "access denied": the listing says which key was refused
    assert "The AWS Access Key Id you provided does not exist" in table.value.cause
    assert "InvalidAccessKeyId" in history.value.cause
    assert "\x1b[" not in history.value.cause  # no terminal colours from deltalake


@pytest.fixture
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Keys only in an AWS credentials file, picked by AWS_PROFILE, as the AWS CLI sets up."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "credentials").write_text(
        "[etl]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    (tmp_path / "config").write_text("[profile etl]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "etl")
    return "etl"


def test_keys_from_an_aws_profile_reach_deltalake_obstore_pyarrow_and_spark(
    spark: SparkSession, s3_bucket: str, aws_profile: str
) -> None:
    """deltalake and obstore read no AWS profile themselves: they asked the instance metadata
    service (169.254.169.254) and failed, so Delta tables, markers and leases did not work with
    the credentials the AWS CLI uses."""
    from spark_flow.runners.lock import RunLock

    storage.write_text_atomically(f"{s3_bucket}/marker.json", "{}")  # pyarrow
    with RunLock(f"{s3_bucket}/locks", job="profile", renew=False) as lock:  # obstore
        assert lock.held
    delta.write(spark.range(3), f"{s3_bucket}/devices")  # Spark's workers, then deltalake

    assert storage.read_bytes(f"{s3_bucket}/marker.json") == b"{}"  # obstore
    assert delta.read(spark, f"{s3_bucket}/devices").count() == 3
    assert storage.options(s3_bucket)["AWS_ACCESS_KEY_ID"] == "testing"


def test_an_aws_profile_that_does_not_exist_is_named(
    s3_bucket: str, aws_profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")

    with pytest.raises(InvalidArgumentError, match=r"AWS_PROFILE.*'nope'"):
        storage.read_bytes(f"{s3_bucket}/marker.json")


def test_a_broken_aws_profile_does_not_stop_work_on_a_local_disk(
    spark: SparkSession, aws_profile: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every delta call hands the store variables to the delta source, local ones too: an
    AWS_PROFILE naming no profile (or an expired SSO login) must not fail them."""
    monkeypatch.setenv("AWS_PROFILE", "nope")

    delta.write(spark.range(2), str(tmp_path / "devices"))
    spark.range(1).write.format("delta").mode("append").save(str(tmp_path / "devices"))

    assert delta.read(spark, str(tmp_path / "devices")).count() == 3


@pytest.mark.parametrize(
    "config",
    [
        "[profile etl]\nregion = eu-west-1\nendpoint_url = {endpoint}\n",
        "[profile etl]\nregion = eu-west-1\nservices = local\n"
        "[services local]\ns3 =\n  endpoint_url = {endpoint}\n",
    ],
)
@pytest.mark.usefixtures("aws_profile", "configured")
def test_the_endpoint_and_region_of_an_aws_profile_reach_every_client(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    """The AWS CLI and boto3 take a profile's endpoint_url (or its services section's s3 one)
    and region; so do all our clients, over a [storage] table, as over a config file."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    for name in (*_ENVIRONMENT, "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    (tmp_path / "config").write_text(config.format(endpoint=endpoint))
    # Nothing listens there: only the AWS profile's endpoint reaches the bucket.
    storage.configure(storage.StorageSettings(endpoint="http://127.0.0.1:9", allow_http=True))

    state = RunState(f"{s3_bucket}/state")  # a Delta table (deltalake) and leases (obstore)
    SingleRunner("loader", state=state).run(date(2024, 1, 1), lambda context: {"rows": 1})
    storage.write_text_atomically(f"{s3_bucket}/marker.json", "{}")  # pyarrow

    assert [r.status for r in state.history("loader")] == ["success"]
    assert storage.read_bytes(f"{s3_bucket}/marker.json") == b"{}"
    assert storage.options(s3_bucket)["AWS_REGION"] == "eu-west-1"  # Spark's workers get these


@pytest.mark.parametrize("opt_out", ["environment", "profile"])
@pytest.mark.usefixtures("aws_profile")
def test_an_opt_out_of_configured_endpoints_drops_the_profiles_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opt_out: str
) -> None:
    """The AWS SDKs skip a profile's endpoint_url when told to; so do all our clients."""
    ignore = "ignore_configured_endpoint_urls = true\n" if opt_out == "profile" else ""
    (tmp_path / "config").write_text(
        f"[profile etl]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:9\n{ignore}"
    )
    assert _store_settings.profile_settings() == (
        ("http://127.0.0.1:9" if opt_out == "environment" else None),
        "eu-west-1",
    )
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "True")

    assert _store_settings.profile_settings() == (None, "eu-west-1")
