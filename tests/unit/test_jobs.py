"""Bundled jobs: discovery, arguments, typed reports and the one way a run ends, without a JVM."""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _probe import FakeSession, failure_lines, reports

from spark_flow.arguments import location_named_in
from spark_flow.errors import InvalidArgumentError, SparkFlowError, UnknownValueError
from spark_flow.fan_out import ChosenBranch
from spark_flow.jobs import (
    MERGED,
    JobReport,
    available_jobs,
    describe,
    load,
    report_of,
    resolve,
    run_and_report,
    split_at_double_dash,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def test_the_bundled_jobs_are_found_with_their_descriptions() -> None:
    assert {"devices_aggregator", "devices_loader"} <= set(available_jobs())
    assert describe("devices_loader").startswith("Load devices JSON into a Delta table")


def test_modules_the_jobs_share_are_not_jobs_and_ship_with_them() -> None:
    folder = resolve("devices_loader").parent

    assert (folder / "_schemas.py").is_file()
    assert not [name for name in available_jobs() if name.startswith("_")]
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"]["jobs"] == "spark_flow/_jobs"  # the whole folder, _modules too


def test_an_unknown_job_lists_the_known_ones_and_the_closest() -> None:
    with pytest.raises(UnknownValueError) as caught:
        resolve("devices_loadr")

    assert "devices_loader" in caught.value.valid_values
    assert "Did you mean 'devices_loader'?" in str(caught.value)


def test_an_unknown_trigger_is_a_usage_error_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    loader = load("devices_loader")
    here = Path(__file__).parent  # an input that exists: inputs are checked first

    with pytest.raises(SystemExit) as caught:
        loader.main(["--input", str(here), "--output", "out", "--trigger", "devices_agregator"])

    assert caught.value.code == 2
    assert "Did you mean 'devices_aggregator'?" in capsys.readouterr().err


def test_a_job_s_functions_travel_by_value_as_executors_cannot_import_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyspark import cloudpickle

    splitter = load("devices_split_loader")
    shipped = cloudpickle.dumps(splitter.enrich)
    monkeypatch.delitem(sys.modules, splitter.__name__)  # as in a Python worker

    assert cloudpickle.loads(shipped).__name__ == "enrich"


def test_the_loader_describes_its_sequence() -> None:
    assert load("devices_loader").LOAD.describe().splitlines()[1:] == [
        "  1. validate",
        "  2. enrich",
    ]


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "own", "downstream"),
    [
        ([], [], []),
        (["--input", "x"], ["--input", "x"], []),
        (["--input", "x", "--", "--output", "y"], ["--input", "x"], ["--output", "y"]),
        (["--"], [], []),
        (["a", "--", "b", "--", "c"], ["a"], ["b", "--", "c"]),  # the first `--` splits
    ],
)
def test_arguments_split_at_the_first_double_dash(
    argv: list[str], own: list[str], downstream: list[str]
) -> None:
    assert split_at_double_dash(argv) == (own, downstream)
    assert split_at_double_dash(tuple(argv)) == (own, downstream)


# -- typed reports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleReport(JobReport):
    run_id: str
    route: ChosenBranch[str]
    written: dict[str, object] = field(metadata=MERGED)


def test_a_report_is_its_fields_in_order_with_nested_reports_and_merged_summaries() -> None:
    report = ExampleReport(
        "r1", ChosenBranch("c", "legacy", "csv", "old date"), written={"rows_written": 4, "x": None}
    )

    assert list(report.as_dict().items()) == [
        ("run_id", "r1"),
        ("route", {"choice": "c", "branch": "legacy", "reason": "old date"}),
        ("rows_written", 4),
        ("x", None),
    ]


def test_a_run_that_returns_no_report_is_named() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        report_of("probe", {"rows": 1})

    assert caught.value.argument == "probe.run"
    assert "returned a dict, which has no as_dict()" in str(caught.value)


@pytest.mark.parametrize("name", sorted(available_jobs()))
def test_every_bundled_job_returns_a_typed_report(name: str) -> None:
    returns = typing.get_type_hints(load(name).run)["return"]

    assert callable(getattr(returns, "as_dict", None)), f"{name}.run returns {returns}"


# -- the one way a run ends ----------------------------------------------------------------------


def test_a_run_reports_one_json_line_with_its_context(
    fake_spark: list[FakeSession], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_and_report(
        "probe", lambda session: {"rows_written": 3}, context={"logical_date": "2024-01-02"}
    )

    (report,) = reports(capsys.readouterr().out)
    assert code == 0
    assert list(report) == ["job", "logical_date", "status", "rows_written", "seconds"]
    assert (report["job"], report["status"]) == ("probe", "success")
    assert fake_spark == []  # the run never asked for Spark, so none was started


def fail_with_ours(session: object) -> dict[str, object]:
    raise InvalidArgumentError("--input", "the probe has no input", "Give it one.")


def fail_with_theirs(session: object) -> dict[str, object]:
    raise RuntimeError("the executor lost its patience\nand said more on a second line")


def test_our_error_is_rendered_in_full_without_a_traceback(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    code = run_and_report("probe", fail_with_ours)

    out, err = capsys.readouterr()
    (report,) = reports(out)
    assert code == 1
    assert report["status"] == "failed"
    assert report["error"] == "--input: the probe has no input. Give it one."
    assert failure_lines(err, "probe") == [f"probe: {report['error']}"]
    assert not [r for r in caplog.records if r.exc_info]


def test_another_error_is_rendered_by_its_telling_line_with_its_traceback_logged(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        code = run_and_report("probe", fail_with_theirs)

    out, err = capsys.readouterr()
    (report,) = reports(out)
    assert code == 1
    assert report["error"] == "RuntimeError: the executor lost its patience"
    assert failure_lines(err, "probe") == ["probe: RuntimeError: the executor lost its patience"]
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert logged.getMessage() == "probe failed"


def test_advice_is_added_to_the_error_it_applies_to(capsys: pytest.CaptureFixture[str]) -> None:
    def advice(exc: BaseException) -> str | None:
        return "Pass --flag." if isinstance(exc, SparkFlowError) else None

    run_and_report("probe", fail_with_ours, advice=advice)
    run_and_report("probe", fail_with_theirs, advice=advice)

    ours, theirs = reports(capsys.readouterr().out)
    assert str(ours["error"]).endswith("Give it one. Pass --flag.")
    assert theirs["error"] == "RuntimeError: the executor lost its patience"


def test_spark_is_stopped_whether_the_run_succeeded_or_failed(
    fake_spark: list[FakeSession], capsys: pytest.CaptureFixture[str]
) -> None:
    def use_spark(session: typing.Callable[[], object]) -> dict[str, object]:
        session()
        return {}

    def use_spark_and_fail(session: typing.Callable[[], object]) -> dict[str, object]:
        session()
        raise RuntimeError("boom")

    run_and_report("probe", use_spark)
    run_and_report("probe", use_spark_and_fail)
    with pytest.raises(KeyboardInterrupt):  # not reported, but Spark is stopped all the same
        run_and_report("probe", lambda session: (session(), _interrupt())[1])

    assert [spark.stopped for spark in fake_spark] == [1, 1, 1]


def _interrupt() -> dict[str, object]:
    raise KeyboardInterrupt


def test_a_job_triggers_the_next_with_the_arguments_after_double_dash(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = load(probe).main(["--trigger", "echo", "--", "--input", "x"])

    first, second = reports(capsys.readouterr().out)
    assert code == 7  # the triggered job's
    assert (first["status"], first["triggered"]) == ("success", "echo")
    assert second == {"job": "echo", "argv": ["--input", "x"]}


def test_a_failed_job_triggers_nothing(probe: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = load(probe).main(["--fail", "ours", "--trigger", "echo", "--", "--input", "x"])

    (report,) = reports(capsys.readouterr().out)
    assert code == 1
    assert "triggered" not in report


def test_a_job_main_runs_on_a_session_it_stops(
    probe: str, fake_spark: list[FakeSession], capsys: pytest.CaptureFixture[str]
) -> None:
    assert load(probe).main([]) == 0

    (report,) = reports(capsys.readouterr().out)
    assert report["rows_written"] == 3
    assert [spark.stopped for spark in fake_spark] == [1]


def test_a_failure_on_an_argument_s_location_names_the_argument_then_spark_s_words(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load(probe).main(["--fail", "vanished", "--input", "data/in"]) == 1

    (report,) = reports(capsys.readouterr().out)
    assert report["error"] == (
        "--input 'data/in': expected an existing file or folder, found nothing there. It was "
        "there when the job started: check what moved or removed it, and rerun. Cause: "
        f"RuntimeError: [PATH_NOT_FOUND] Path does not exist: file:{Path('data/in').absolute()}. "
        "SQLSTATE: 42K03."
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Path does not exist: file:/abs/in/part-0.json", ("--input", "/abs/in")),
        ("cannot write /abs/out/_delta_log/00.json", ("--output", "/abs/out")),
        ("s3a://bucket/t: Access Denied", None),  # s3a:// is not what --output says
        ("s3://bucket/t: Access Denied", ("--output", "s3://bucket/t")),
        ("app devices_loader failed", None),  # a name is not a location
    ],
)
def test_a_location_in_an_error_is_traced_to_its_argument(
    text: str, named: tuple[str, str] | None
) -> None:
    args = argparse.Namespace(input="/abs/in", run_id="devices_loader", batch_id=3)
    if "s3" in text:
        args.output = "s3://bucket/t"
    else:
        args.output = "/abs/out"

    assert location_named_in(text, args) == named
