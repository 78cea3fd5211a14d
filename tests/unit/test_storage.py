"""Path schemes: local paths, file: URIs and object-store URIs, each going where it can."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spark_flow import _paths, storage
from spark_flow.errors import InvalidArgumentError, StorageError


@pytest.mark.parametrize(
    ("path", "scheme", "local"),
    [
        ("data/devices", "file", True),
        ("/abs/devices", "file", True),
        ("file:///abs/devices", "file", True),
        ("file:/abs/devices", "file", True),  # Hadoop writes file: URIs with one slash
        ("s3://bucket/devices", "s3", False),
        ("S3A://bucket/devices", "s3a", False),
        ("gs://bucket/devices", "gs", False),
        ("abfss://container@account.dfs.core.windows.net/devices", "abfss", False),
    ],
)
def test_every_path_has_one_scheme_and_only_file_is_local(
    path: str, scheme: str, local: bool
) -> None:
    assert storage.scheme(path) == scheme
    assert storage.is_local(path) is local


def test_local_paths_and_file_uris_resolve_to_the_same_absolute_folder(tmp_path: Path) -> None:
    target = tmp_path / "a folder"

    assert storage.folder(str(target)) == str(target)
    assert storage.folder(target.as_uri()) == str(target)  # percent-encoded space decoded
    assert storage.folder(f"file://localhost{target}") == str(target)
    assert storage.folder("relative") == os.path.abspath("relative")


def test_a_hash_or_question_mark_in_a_file_uri_is_part_of_the_path_as_spark_takes_it(
    tmp_path: Path,
) -> None:
    # Hadoop's Path (so Spark) reads file:/data/run#2 as the folder run#2, not run + a fragment.
    assert storage.folder(f"file:{tmp_path}/run#2") == f"{tmp_path}/run#2"
    assert storage.folder(f"file://{tmp_path}/a?b#c") == f"{tmp_path}/a?b#c"


def test_object_store_uris_are_kept_as_they_are() -> None:
    assert storage.folder("s3://bucket/devices") == "s3://bucket/devices"
    assert storage.join("s3://bucket/devices/", "_ready", "latest.json") == (
        "s3://bucket/devices/_ready/latest.json"
    )


def test_a_file_uri_naming_another_host_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        storage.folder("file://tmp/devices")  # two slashes: "tmp" is taken as a host

    assert caught.value.argument == "path"
    assert "names host 'tmp'" in str(caught.value)
    assert "file:///absolute/path" in caught.value.fix


def test_a_file_where_a_folder_is_expected_is_named(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")

    with pytest.raises(InvalidArgumentError, match="is a file, not a folder"):
        storage.folder(str(tmp_path / "out"))
    with pytest.raises(InvalidArgumentError, match="is a file, not a folder"):
        storage.join((tmp_path / "out").as_uri(), "_ready")


def test_work_that_needs_a_rename_refuses_object_stores_with_the_callers_advice() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        storage.local_folder(
            "s3://bucket/out", purpose="csv outputs publish with a rename", fix="Use delta."
        )

    message = str(caught.value)
    assert message.startswith("path: csv outputs publish with a rename, which is atomic only on")
    assert "not on s3:// ('s3://bucket/out')" in message
    assert caught.value.fix == "Use delta."
    assert "delta-rs" not in message  # a storage fact, whatever the session's Delta backend


def test_local_folder_accepts_file_uris(tmp_path: Path) -> None:
    assert storage.local_folder(tmp_path.as_uri(), purpose="p", fix="f") == tmp_path


def test_text_is_written_whole_read_back_and_missing_reads_as_none(tmp_path: Path) -> None:
    uri = (tmp_path / "deep" / "marker.json").as_uri()

    assert storage.read_text(uri) is None
    assert not storage.exists(uri)
    storage.write_text_atomically(uri, '{"run": 1}')
    storage.write_text_atomically(uri, '{"run": 2}')

    assert storage.read_text(uri) == '{"run": 2}'
    assert storage.exists(uri)
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["marker.json"]  # no temp left


@pytest.mark.parametrize("path", ["s3://", "s3:///devices", "S3A://", "gs://", "az:///devices"])
def test_a_store_uri_without_a_bucket_is_refused_by_name_before_any_request(path: str) -> None:
    calls = [
        storage.check_reachable,
        storage.exists,
        storage.list_files,
        storage.read_text,
        storage.object_store,
        lambda p: storage.write_text_atomically(p, "{}"),
        lambda p: storage.join(p, "_spark_flow_ready", "latest.json"),
    ]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call(path)

        assert caught.value.path == path
        assert "the URI names no bucket: write" in caught.value.cause
        assert "://warehouse/devices" in caught.value.cause


def test_an_unsupported_scheme_says_what_to_use_instead() -> None:
    with pytest.raises(StorageError) as caught:
        storage.check_reachable("hdfs://namenode:8020/warehouse/devices")

    assert "no object store is known for hdfs://" in caught.value.cause
    assert "use one of those stores, or a local or mounted path" in caught.value.cause


@pytest.mark.parametrize("path", ["s3://bucket/a%20b", "gs://bucket/100%25/devices"])
def test_a_store_location_with_a_percent_escape_is_refused(path: str) -> None:
    # deltalake would decode it, Spark and pyarrow would not: log and data in different folders
    with pytest.raises(StorageError) as caught:
        storage.check_reachable(path)

    assert "reads as an escaped character to deltalake" in caught.value.cause


def test_keys_below_a_location_may_hold_percent_escapes() -> None:
    # Hive partition folders escape `/` and `=`: `country=a%2Fb` is a folder name, not a problem
    assert storage.join("s3://bucket/t", "country=a%2Fb") == "s3://bucket/t/country=a%2Fb"


@pytest.fixture
def no_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine off every cloud, without credentials: no variables, no CLI logins, no VM
    maker in its DMI data (a CI runner may well be an Azure VM, so it is described here)."""
    for name in os.environ:
        if name.startswith(("GOOGLE_", "AZURE_", "GCE_", "CLOUDSDK_")) or name in (
            "K_SERVICE", "CLOUD_RUN_JOB", "IDENTITY_ENDPOINT", "MSI_ENDPOINT",
        ):  # fmt: skip
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "product_name").write_text("Standard PC\n")
    (dmi / "sys_vendor").write_text("QEMU\n")
    monkeypatch.setattr("spark_flow._store_settings._DMI", dmi)
    return tmp_path


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("gs://bucket/devices", "no Google Cloud credentials"),
        ("abfss://data@account.dfs.core.windows.net/devices", "no Azure credentials"),
        ("az://data/devices", "no Azure credentials"),
    ],
)
def test_a_cloud_store_without_credentials_is_refused_before_its_client_waits_on_metadata(
    no_cloud: Path, path: str, fragment: str
) -> None:
    # Without this, a gs:// read asks a metadata server that is not there, for minutes.
    for call in (storage.check_reachable, storage.exists, storage.list_files):
        with pytest.raises(StorageError) as caught:
            call(path)

        assert caught.value.cause.startswith(fragment)


def test_cloud_credentials_found_the_standard_ways_pass(
    no_cloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adc = no_cloud / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "a-key")

    storage.check_reachable("gs://bucket/devices")
    storage.check_reachable("az://data/devices")
    (no_cloud / "dmi" / "product_name").write_text("Google Compute Engine\n")
    adc.unlink()
    storage.check_reachable("gs://bucket/devices")  # a GCE VM: the metadata server answers


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("s3://", "the URI names no bucket"),
        ("hdfs://namenode/devices", "no object store is known for hdfs://"),
        ("s3a://bucket/100%25", "reads as an escaped character to deltalake"),
        ("s3a://bucket/sales 2024/café", None),
        ("data/devices", None),
    ],
)
def test_a_location_problem_is_known_without_a_request(path: str, fragment: str | None) -> None:
    # For a job's argument checks: no credentials, no network, no store needed
    problem = storage.location_problem(path)

    assert problem is None if fragment is None else fragment in problem


def test_only_whitespace_that_ends_a_store_uri_is_refused() -> None:
    # URL parsers trim the ends of a URI (ASCII only); a space before a later '/' is kept.
    assert _paths.ambiguous_root("s3://b/t /") is None
    assert _paths.ambiguous_root("s3://b/t\u00a0") is None
    assert "ends with whitespace" in (_paths.ambiguous_root("s3://b/t ") or "")
