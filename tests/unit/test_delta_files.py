"""The Arrow file writer Python workers run for delta-rs writes, on a local folder (no Spark)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_flow._paths import escape_path_name
from spark_flow.delta._files import FileWriter, WrittenFile, partition_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("fr", "fr"),
        (True, "true"),
        (7, "7"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        # An instant in Delta's UTC form; a wall-clock time (TIMESTAMP_NTZ) as it is.
        (
            dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            "2024-01-01T18:04:05.000000Z",
        ),
        (dt.datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc), "0005-01-02T03:04:05.000006Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
        (None, None),
    ],
)
def test_partition_values_are_written_as_delta_stores_them(value: object, text: str | None) -> None:
    assert partition_text(value) == text


def test_directory_names_escape_what_spark_escapes() -> None:
    assert escape_path_name("a/b=c d%") == "a%2Fb%3Dc d%25"


def test_batches_are_split_by_partition_into_hive_folders(tmp_path: Path) -> None:
    batch = pa.record_batch(
        {"id": [1, 2, 3, 4], "country": ["fr", None, "a/b", "fr"]},
    )
    writer = FileWriter(str(tmp_path), "w1", ("country",))

    files = writer.write([batch])

    by_folder = {file.path.split("/")[0]: file for file in files}
    assert set(by_folder) == {"country=fr", "country=__HIVE_DEFAULT_PARTITION__", "country=a%2Fb"}
    assert by_folder["country=__HIVE_DEFAULT_PARTITION__"].partition_values == {"country": None}
    fr = by_folder["country=fr"]
    assert fr.partition_values == {"country": "fr"}
    assert pq.read_table(tmp_path / fr.path).to_pydict() == {"id": [1, 4]}  # no partition column
    assert all(file.path.rsplit("/", 1)[1].startswith("part-w1-") for file in files)
    assert WrittenFile.from_row(fr.as_row()) == fr


def test_small_batches_are_gathered_into_one_row_group(tmp_path: Path) -> None:
    batches = [pa.record_batch({"id": list(range(i, i + 100))}) for i in range(0, 10_000, 100)]

    (file,) = FileWriter(str(tmp_path), "w2").write(batches)

    metadata = pq.read_metadata(tmp_path / file.path)
    assert (metadata.num_rows, metadata.num_row_groups) == (10_000, 1)
    assert file.size == (tmp_path / file.path).stat().st_size


def test_a_task_without_rows_writes_no_file(tmp_path: Path) -> None:
    assert (
        FileWriter(str(tmp_path), "w3").write([pa.record_batch({"id": pa.array([], "int64")})])
        == []
    )


def test_a_failing_task_removes_the_files_it_wrote(tmp_path: Path) -> None:
    def batches():  # type: ignore[no-untyped-def]
        yield pa.record_batch({"id": [1]})
        raise RuntimeError("the task died")

    with pytest.raises(RuntimeError, match="the task died"):
        FileWriter(str(tmp_path), "w4").write(batches())

    assert not any(p.is_file() for p in tmp_path.rglob("*"))
