"""devices_output_router in this process: every router, boundary dates, schema changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.generate import generate_devices
from spark_flow.jobs import load

router = load("devices_output_router")


def route(spark: SparkSession, *argv: str) -> dict[str, Any]:
    report: dict[str, Any] = router.run(spark, router.parser().parse_args(list(argv))).as_dict()
    return report


@pytest.fixture(scope="module")
def current_devices(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("current")
    generate_devices(folder, rows=40, seed=3)
    return str(folder)


@pytest.fixture(scope="module")
def legacy_devices(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The layout before the schema change: no `version` field."""
    folder = tmp_path_factory.mktemp("legacy")
    lines = [json.dumps({"type": "galaxy", "full_name": f"galaxy {i}"}) for i in range(15)]
    (folder / "devices.json").write_text("\n".join(lines) + "\n")
    return str(folder)


def test_the_migration_date_itself_takes_the_delta_branch_and_a_replay_writes_nothing(
    spark: SparkSession, current_devices: str, tmp_path: Path
) -> None:
    out = str(tmp_path / "out")
    args = ("--input", current_devices, "--output", out, "--route-by", "date")
    dates = ("--run-date", "2024-01-01", "--migration-date", "2024-01-01")

    first = route(spark, *args, *dates)
    replay = route(spark, *args, *dates)

    assert first["route"]["branch"] == "current"
    assert "on or after the migration" in first["route"]["reason"]
    assert (first["output_type"], first["output"]) == ("delta", str(Path(out) / "current"))
    assert (first["committed"], first["rows_written"]) == (True, 40)
    assert (replay["committed"], replay["rows_written"]) == (False, 0)
    app_id = "devices_output_router.20240101"  # one app id per batch
    assert delta.transaction_version(first["output"], app_id) == 20240101
    assert not (Path(out) / "legacy").exists()


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [("current_devices", ("current", 3)), ("legacy_devices", ("legacy", 2))],
)
def test_routing_by_schema_sends_old_layouts_to_the_legacy_table(
    spark: SparkSession,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fixture: str,
    expected: tuple[str, int],
) -> None:
    source, (branch, fields) = request.getfixturevalue(fixture), expected
    report = route(
        spark, "--input", source, "--output", str(tmp_path), "--route-by", "schema",
        "--batch-id", "1",
    )  # fmt: skip

    assert report["route"]["branch"] == branch
    assert f"has {fields} fields" in report["route"]["reason"]
    assert len(delta.read(spark, str(tmp_path / branch)).columns) == fields


@pytest.mark.parametrize("output_type", ["delta", "parquet", "csv", "json"])
def test_the_output_type_parameter_picks_the_writer(
    spark: SparkSession, current_devices: str, tmp_path: Path, output_type: str
) -> None:
    report = route(
        spark, "--input", current_devices, "--output", str(tmp_path / "out"),
        "--output-type", output_type, "--batch-id", "7",
    )  # fmt: skip

    assert report["route"]["branch"] == output_type
    assert report["output"] == str(tmp_path / "out")
    assert report["rows_written"] == 40
    assert (tmp_path / "out" / "_delta_log").exists() == (output_type == "delta")


# `{}` is a record with no fields: Spark reads it as a row of nulls, not a malformed line.
@pytest.mark.parametrize(
    ("text", "read", "malformed"),
    [("", 0, 0), ("not json\n[1, 2]\n", 2, 2), ("not json\n{}\n", 2, 1)],
    ids=["empty", "unparsable", "unparsable-and-empty-record"],
)
def test_an_input_without_a_record_is_quarantined_and_accounted_not_refused(
    spark: SparkSession, tmp_path: Path, text: str, read: int, malformed: int
) -> None:
    # As the loaders do: every line is accounted for, the unparsable ones kept to look at.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "devices.json").write_text(text)

    report = route(spark, "--input", str(folder), "--output", str(tmp_path / "out"),
                   "--output-type", "delta", "--batch-id", "1")  # fmt: skip

    assert report["accounting"]["rows_read"] == read
    assert report["accounting"]["rows_written"] == {"devices": read - malformed}
    assert report["accounting"]["rows_rejected"] == {"malformed_record": malformed}
    assert delta.read(spark, report["quarantine"]["path"]).count() == malformed


GOOD = json.dumps({"type": "galaxy", "full_name": "galaxy s", "version": "1.0"})


# Spark reads each of these; the router's look at the first record must too.
@pytest.mark.parametrize(
    ("text", "read", "malformed"),
    [
        (f"{{not json\n{GOOD}\n", 2, 1),
        (f"\ufeff{GOOD}\n{GOOD}\n", 2, 0),
        (f"{GOOD}\r\n{GOOD}\r\n", 2, 0),
        (f"[{GOOD}, {GOOD}]\n", 2, 0),
    ],
    ids=["first-line-malformed", "bom", "crlf", "array-of-records"],
)
def test_inputs_spark_reads_are_routed_and_every_row_accounted(
    spark: SparkSession, tmp_path: Path, text: str, read: int, malformed: int
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "devices.json").write_text(text, encoding="utf-8")
    argv = ("--input", str(folder), "--output", str(tmp_path / "out"), "--output-type", "delta",
            "--batch-id", "3")  # fmt: skip

    report = route(spark, *argv)
    rerun = route(spark, *argv)

    assert report["accounting"]["rows_read"] == read
    assert report["accounting"]["rows_written"] == {"devices": read - malformed}
    assert report["accounting"]["rows_rejected"] == {"malformed_record": malformed}
    assert rerun["accounting"]["rows_read"] == 0
    assert delta.read(spark, str(tmp_path / "out")).count() == read - malformed
    assert delta.read(spark, report["quarantine"]["path"]).count() == malformed


def test_unparsable_lines_are_quarantined_beside_the_chosen_output_and_counted(
    spark: SparkSession, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = [json.dumps({"type": "galaxy", "full_name": f"g {i}", "version": "1"}) for i in range(4)]
    (folder / "devices.json").write_text("\n".join([*good, "{not json"]) + "\n")
    out = str(tmp_path / "out")

    report = route(spark, "--input", str(folder), "--output", out, "--output-type", "parquet",
                   "--batch-id", "7")  # fmt: skip

    assert report["accounting"] == {
        "rows_read": 5,
        "rows_written": {"devices": 4},
        "rows_rejected": {"malformed_record": 1},
        "balanced": True,
        "note": None,
    }
    (held,) = delta.read(spark, report["quarantine"]["path"]).collect()
    assert (held["reason"], held["raw"]) == ("malformed_record", "{not json")
    assert report["quarantine"]["path"] == str(Path(out) / "_spark_flow_quarantine")
