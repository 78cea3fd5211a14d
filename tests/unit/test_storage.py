"""Path schemes: local paths, file: URIs and object-store URIs, each going where it can."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spark_flow import storage
from spark_flow.errors import InvalidArgumentError


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
