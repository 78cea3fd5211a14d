"""Log replay edge cases of Delta's golden tables, read by both readers against the rows written.

A remove may name its file otherwise than the add did, and writers logging absolute paths may
share a table with writers logging relative ones: delta-spark matches removes to adds by the
file a path resolves to (its golden tables `canonicalized-paths-*`). deltalake and DuckDB
compare the text, so they are no independent reader here; the rows written are the truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from _delta_tables import TableBuilder
from pyspark.sql import SparkSession
from test_delta_read_mapping import both_readers


def ids(spark: SparkSession, root: Path, version: int | None = None) -> list[list[int]]:
    """The ids each reader (delta.read, format("delta")) returns."""
    return [sorted(r.id for r in frame.collect()) for frame in both_readers(spark, root, version)]


def remove(add: dict[str, Any], path: str) -> dict[str, Any]:
    """The remove of the file of `add`, naming it by `path`."""
    logged = add["add"]
    return {
        "remove": {
            "path": path,
            "deletionTimestamp": 1,
            "dataChange": True,
            "partitionValues": logged["partitionValues"],
            "size": logged["size"],
        }
    }


@pytest.mark.parametrize(
    ("added", "removed"),
    [
        ("{rel}", "file:{abs}"),
        ("{rel}", "file://{abs}"),
        ("file:{abs}", "file://{abs}"),
        ("{abs}", "file:{abs}"),
        ("a%20b/./f.parquet", "{rel}"),
    ],
)
def test_a_file_removed_under_another_spelling_stays_removed(
    spark: SparkSession, tmp_path: Path, added: str, removed: str
) -> None:
    table = TableBuilder(tmp_path, [("id", "long")], features=False)
    gone = table.add([{"id": 1}], relative="a b/f.parquet")
    kept = table.add([{"id": 2}])
    spelled = {"rel": gone["add"]["path"], "abs": quote(str(tmp_path / "a b" / "f.parquet"))}
    gone["add"]["path"] = added.format(**spelled)
    table.commit(gone, kept)
    table.commit(remove(gone, removed.format(**spelled)))

    assert ids(spark, tmp_path) == [[2], [2]]  # deltalake reads [1, 2]: the row came back
    assert ids(spark, tmp_path, version=1) == [[1, 2], [1, 2]]


def test_a_file_added_and_removed_outside_the_table_reads_empty_not_missing(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Golden table canonicalized-paths-special-b: the file is gone (vacuumed) and the log says so.
    table = TableBuilder(tmp_path / "t", [("id", "long")], features=False)
    elsewhere = table.add([{"id": 1}], relative="../with space/p@#h.parquet")
    elsewhere["add"]["path"] = (tmp_path / "with space" / "p@#h.parquet").as_uri()
    table.commit(elsewhere)
    (tmp_path / "with space" / "p@#h.parquet").unlink()
    table.commit(remove(elsewhere, "file:" + str(tmp_path / "with%20space" / "p@%23h.parquet")))

    assert ids(spark, tmp_path / "t") == [[], []]


def test_a_file_added_under_two_spellings_is_read_once(spark: SparkSession, tmp_path: Path) -> None:
    table = TableBuilder(tmp_path, [("id", "long")], features=False)
    twice = table.add([{"id": 1}], relative="f.parquet")
    table.commit(twice)
    table.commit({"add": {**twice["add"], "path": (tmp_path / "f.parquet").as_uri()}})

    assert ids(spark, tmp_path) == [[1], [1]]


def test_deletion_vector_updates_logged_add_first_keep_the_file(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Golden table log-replay-dv-key-cases: delta-spark logs the add of the new DV before the
    # remove of the old one; both name the same path, the add wins.
    table = TableBuilder(tmp_path, [("id", "long")], deletion_vectors=True)
    added = table.add([{"id": n} for n in range(6)], relative="f.parquet")
    table.commit(added)
    for deleted in ([0], [0, 3], [0, 3, 5]):
        removed, added = table.delete(added, deleted, inline=False)
        table.commit(added, removed)

    assert ids(spark, tmp_path) == [[1, 2, 4], [1, 2, 4]]
    assert ids(spark, tmp_path, version=2) == [[1, 2, 3, 4, 5]] * 2
