"""A broken Delta log is refused with an error of ours naming the table, the version and the defect.

Each table is a good one broken on purpose (tests/_delta_logs.py); no Spark session is needed.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _delta_logs as logs
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from _delta_tables import TableBuilder
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from spark_flow import delta
from spark_flow.delta import _log, _read
from spark_flow.errors import (
    InvalidArgumentError,
    InvalidDeltaLogError,
    NotADeltaTableError,
    UnsupportedDeltaFeatureError,
)


@pytest.fixture
def good(tmp_path: Path) -> str:
    return logs.table(tmp_path / "devices")


def refused(path: str, version: int | None = None) -> InvalidDeltaLogError:
    """The error reading `path` raises, checked to be ours with a library cause, not its text."""
    with pytest.raises(InvalidDeltaLogError) as caught:
        _log.readable_table(path, version)
    error = caught.value
    assert error.path == path
    assert "Kernel error" not in str(error)
    assert "DeltaError" not in str(error)
    assert pickle.loads(pickle.dumps(error)).__dict__ == error.__dict__
    return error


def test_a_missing_commit_names_its_version_and_older_versions_still_read(good: str) -> None:
    logs.commit_file(good, 1).unlink()

    error = refused(good)

    assert error.version == 1
    assert "00000000000000000001.json) is missing" in error.defect
    assert "version=0" in error.advice
    assert isinstance(error.__cause__, DeltaError)
    assert _log.readable_table(good, 0).version() == 0  # time travel before the gap still works
    with pytest.raises(InvalidDeltaLogError):
        delta.table_info(good)  # the log-only API says the same


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("protocol", "no protocol action"), ("metaData", "no metaData action")],
)
def test_a_log_without_protocol_or_metadata_is_refused(good: str, kind: str, fragment: str) -> None:
    logs.rewrite(good, 0, logs.without(kind))

    error = refused(good)

    assert fragment in error.defect
    assert error.version == 2


def test_a_commit_that_is_not_json_is_named(good: str) -> None:
    logs.commit_file(good, 2).write_text('{"add": {"path": "torn')

    error = refused(good)

    assert error.version == 2
    assert "line 1 of _delta_log/00000000000000000002.json is not a JSON object" in error.defect
    assert "version=1" in error.advice


def test_a_last_checkpoint_naming_a_missing_checkpoint_is_refused(good: str) -> None:
    DeltaTable(good).create_checkpoint()
    hint = Path(good) / "_delta_log" / "_last_checkpoint"
    hint.write_text(json.dumps({"version": 7, "size": 3}))

    error = refused(good)

    assert "_last_checkpoint names a checkpoint at version 7" in error.defect
    assert "Delete _delta_log/_last_checkpoint" in error.advice


@pytest.mark.parametrize("hint", ["{torn", ""])  # "": golden corrupted-last-checkpoint-kernel
def test_a_last_checkpoint_that_does_not_parse_is_ignored_as_delta_readers_do(
    good: str, hint: str
) -> None:
    # The hint is optional: Delta's reference reader lists the log when it cannot parse it.
    DeltaTable(good).create_checkpoint()
    (Path(good) / "_delta_log" / "_last_checkpoint").write_text(hint)

    assert _log.readable_table(good).version() == 2


def test_a_data_file_the_log_names_but_the_store_lacks_is_named(good: str) -> None:
    name = DeltaTable(good, version=1).file_uris()[0]
    os.remove(name)

    error = refused(good)

    assert error.version == 2
    assert f"first {os.path.basename(name)!r}" in error.defect
    assert "FSCK REPAIR TABLE" in error.advice
    assert _log.readable_table(good, 0).version() == 0  # the file was added at version 1
    assert "DeltaTable(path).repair()" in error.advice  # the advice works where deltalake is
    DeltaTable(good).repair()
    assert _log.readable_table(good).version() == 3


@pytest.mark.parametrize(
    ("protocol", "fragment"),
    [
        ({"minReaderVersion": 3, "minWriterVersion": 7, "writerFeatures": []},
         "lists no readerFeatures with minReaderVersion=3"),
        ({"minReaderVersion": 1, "minWriterVersion": 7},
         "lists no writerFeatures with minWriterVersion=7"),
        ({"minReaderVersion": 1, "minWriterVersion": 2, "readerFeatures": ["columnMapping"],
          "writerFeatures": ["columnMapping"]},
         "lists readerFeatures with minReaderVersion=1"),
        ({"minReaderVersion": 3, "minWriterVersion": 5, "readerFeatures": []},
         "minReaderVersion=3 but minWriterVersion=5"),
        ({"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["timestampNtz"],
          "writerFeatures": []},
         "reader features ['timestampNtz'] not in writerFeatures"),
        ({"minReaderVersion": 0, "minWriterVersion": 2}, "integers of at least 1"),
    ],
)  # fmt: skip
def test_a_protocol_action_that_breaks_the_spec_is_refused(
    good: str, protocol: dict[str, Any], fragment: str
) -> None:
    logs.set_protocol(good, protocol, version=1)

    error = refused(good)

    assert error.version == 1
    assert fragment in error.defect


def test_a_path_without_a_table_keeps_its_own_error(tmp_path: Path) -> None:
    assert delta.table_info(str(tmp_path)) is None


@pytest.mark.parametrize(
    "protocol",
    [
        # deltalake itself refuses to open these ...
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["fancyNewThing"],
         "writerFeatures": ["fancyNewThing"]},
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["catalogManaged"],
         "writerFeatures": ["catalogManaged"]},
        # ... and opens these, which our allow-list refuses.
        {"minReaderVersion": 3, "minWriterVersion": 7,
         "readerFeatures": ["variantShredding-preview"],
         "writerFeatures": ["variantShredding-preview"]},
        {"minReaderVersion": 4, "minWriterVersion": 7, "writerFeatures": []},
    ],
    ids=["unknown", "catalogManaged", "variantShredding", "reader-4"],
)  # fmt: skip
def test_a_table_needing_what_the_reader_lacks_is_refused_by_name(
    good: str, protocol: dict[str, Any]
) -> None:
    logs.set_protocol(good, protocol, version=2)

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        _log.readable_table(good)

    named = protocol.get("readerFeatures") or [f"minReaderVersion={protocol['minReaderVersion']}"]
    assert f"it needs {named[0]}" in caught.value.feature
    assert repr(good) in caught.value.feature
    assert "backend 'jvm'" in caught.value.fix
    assert _log.readable_table(good, 1).version() == 1  # the versions before it still read


@pytest.mark.parametrize("legacy", [True, False], ids=["reader-2", "table-features"])
def test_column_mapping_is_read_on_both_protocols(tmp_path: Path, legacy: bool) -> None:
    # Reader version 2 means column mapping though no list says so: the reader must know it.
    path = logs.column_mapped(tmp_path / "mapped", legacy=legacy)

    table = _log.readable_table(path)

    assert table.metadata().configuration["delta.columnMapping.mode"] == "name"
    assert delta.table_info(path).reader_features == ("columnMapping",)  # type: ignore[union-attr]


def test_versions_removed_by_log_cleanup_are_out_of_range_not_a_broken_log(tmp_path: Path) -> None:
    path = logs.table(tmp_path / "devices", commits=5)
    DeltaTable(path).create_checkpoint()
    logs.table(Path(path), commits=2)
    for old in range(4):  # what Delta's metadata cleanup leaves: the checkpoint and after
        logs.commit_file(path, old).unlink()

    for version in (2, 9):
        with pytest.raises(InvalidArgumentError) as caught:
            _log.readable_table(path, version)
        assert f"has versions 4 to 6, not {version}" in caught.value.problem
        # the cleanup explains a version before the range only
        assert ("removed by log cleanup" in caught.value.problem) == (version < 4)
    assert _log.readable_table(path, 4).version() == 4


def test_a_version_after_a_broken_latest_is_out_of_range(good: str) -> None:
    logs.commit_file(good, 1).unlink()

    with pytest.raises(InvalidArgumentError, match="has versions 0 to 2, not 7"):
        _log.readable_table(good, 7)


def checkpointed(path: Path, build: str) -> str:
    """A table of 5 commits checkpointed at version 4 (as `build` says), commits 0-3 cleaned up."""
    table = logs.table(path, commits=5)
    if build == "multi-part":
        logs.multi_part_checkpoint(table, parts=3)
    elif build == "sidecars":
        logs.v2_checkpoint(table, form="json", sidecars=True)
    else:
        DeltaTable(table).create_checkpoint()
    for old in range(4):
        logs.commit_file(table, old).unlink()
    return table


def test_a_multi_part_checkpoint_missing_a_part_is_named(tmp_path: Path) -> None:
    path = checkpointed(tmp_path / "devices", "multi-part")
    part = "00000000000000000004.checkpoint.0000000002.0000000003.parquet"
    (Path(path) / "_delta_log" / part).unlink()

    error = refused(path)

    assert (error.version, error.defect) == (
        4,
        "its multi-part checkpoint of version 4 lacks part(s) [2] of 3",
    )
    assert "Delete that checkpoint's files" in error.advice


def test_a_checkpoint_naming_a_missing_sidecar_is_named(tmp_path: Path) -> None:
    path = checkpointed(tmp_path / "devices", "sidecars")
    (sidecar,) = (Path(path) / "_delta_log" / "_sidecars").iterdir()
    sidecar.unlink()

    error = refused(path)

    assert error.version == 4
    assert f"_delta_log/_sidecars/ lacks, first {sidecar.name!r}" in error.defect


def test_a_checkpoint_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    path = checkpointed(tmp_path / "devices", "classic")
    (Path(path) / "_delta_log" / "00000000000000000004.checkpoint.parquet").write_bytes(b"torn")

    error = refused(path)

    assert error.version == 4
    assert "checkpoint.parquet is not a readable Parquet file" in error.defect


def test_an_action_deltalake_rejects_is_a_broken_log_not_a_storage_failure(good: str) -> None:
    def mistyped(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for action in found:
            if "add" in action:
                action["add"]["size"] = "big"  # the protocol's size is a long
        return found

    logs.rewrite(good, 1, mistyped)

    error = refused(good)

    assert "an action in it does not parse as the protocol defines it" in error.defect
    assert "Json error" in str(error.__cause__)


@pytest.mark.parametrize("kind", ["protocol", "metaData"])
def test_a_checkpoint_without_protocol_or_metadata_is_named(good: str, kind: str) -> None:
    # Golden tables deltalog-state-reconstruction-from-checkpoint-missing-*: delta-spark fails.
    DeltaTable(good).create_checkpoint()
    checkpoint = Path(good) / "_delta_log" / "00000000000000000002.checkpoint.parquet"
    rows = pq.read_table(checkpoint)
    pq.write_table(rows.filter(pc.is_null(rows[kind])), checkpoint)

    error = refused(good)

    assert error.version == 2
    assert f"00000000000000000002.checkpoint.parquet holds no {kind} action" in error.defect
    assert "Delete that checkpoint's files and _delta_log/_last_checkpoint" in error.advice
    checkpoint.unlink()  # the advice, followed: the commits rebuild the table
    (Path(good) / "_delta_log" / "_last_checkpoint").unlink()
    assert _log.readable_table(good).version() == 2


def test_a_log_left_with_only_its_checkpoint_hint_is_named_not_a_storage_failure(
    good: str,
) -> None:
    DeltaTable(good).create_checkpoint()
    for name in Path(good, "_delta_log").iterdir():
        if name.name != "_last_checkpoint":
            name.unlink()

    error = refused(good)

    assert "_last_checkpoint names a checkpoint at version 2" in error.defect
    Path(good, "_delta_log", "_last_checkpoint").unlink()  # the advice, followed
    with pytest.raises(NotADeltaTableError):
        _log.readable_table(good)


def _metadata(change: Callable[[dict[str, Any]], None]) -> Callable[[list[Any]], list[Any]]:
    def rewrite(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for action in found:
            if "metaData" in action:
                change(action["metaData"])
        return found

    return rewrite


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(schemaString=m["schemaString"].replace('"long"', '"lonk"')),
         "gives column 'id' the type 'lonk', no Delta type"),
        (lambda m: m.update(partitionColumns=["country"]),
         "its partitionColumns name ['country'], which its schema lacks"),
        (lambda m: m.pop("schemaString"),  # golden tables canonicalized-paths-*
         "its metaData action has no schemaString"),
    ],
)  # fmt: skip
def test_metadata_that_does_not_parse_names_its_version_and_field(
    good: str, change: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    logs.rewrite(good, 0, _metadata(change))

    error = refused(good)

    assert error.version == 0
    assert fragment in error.defect


def test_a_partition_value_that_is_no_value_of_its_type_is_named(tmp_path: Path) -> None:
    table = TableBuilder(tmp_path, [("id", "long"), ("n", "integer")], partition_columns=("n",))
    table.commit(table.add([{"id": 1}], {"n": "7"}))
    table.commit(table.add([{"id": 2}], {"n": "seven"}))

    error = refused(str(tmp_path))

    assert error.version == 2
    assert "gives partition column 'n' the value 'seven', which is no integer" in error.defect
    assert "read version=1 or earlier" in error.advice
    assert _log.readable_table(str(tmp_path), 1).version() == 1


@pytest.mark.parametrize("damage", ["missing", "torn"])
def test_a_deletion_vector_file_missing_or_torn_is_named(tmp_path: Path, damage: str) -> None:
    table = TableBuilder(tmp_path, [("id", "long")], deletion_vectors=True)
    added = table.add([{"id": 1}, {"id": 2}])
    table.commit(added)
    table.commit(*table.delete(added, [0], inline=False))
    (vector,) = tmp_path.glob("deletion_vector_*.bin")
    if damage == "missing":
        vector.unlink()
    else:
        vector.write_bytes(vector.read_bytes()[:5])

    with pytest.raises(InvalidDeltaLogError) as caught:
        _read.plan(str(tmp_path))

    assert caught.value.version == 2
    assert f"{vector.name!r}, is missing or does not read" in caught.value.defect
    assert "Kernel error" not in str(caught.value)
    assert len(_read.plan(str(tmp_path), 1).files) == 1  # the advice: a version before it


def test_a_remove_naming_a_file_on_another_host_leaves_the_tables_files(tmp_path: Path) -> None:
    # deltalake matches it to no add by its text; resolving it must not fail the read either.
    table = TableBuilder(tmp_path, [("id", "long")])
    table.commit(table.add([{"id": 1}], relative="f.parquet"))
    remove = {"path": "file://elsewhere/f.parquet", "deletionTimestamp": 1, "dataChange": True}
    table.commit({"remove": remove})

    _, actions = _log.readable_files(str(tmp_path))

    assert [a["path"] for a in actions] == ["f.parquet"]
