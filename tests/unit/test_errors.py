from __future__ import annotations

import importlib
import pickle
import pkgutil
import re

import pytest

import spark_flow
from spark_flow.errors import (
    ArgumentLocationError,
    ConcurrentRunError,
    ConfigError,
    ConnectServerError,
    DependsOnPastError,
    InputNotReadyError,
    InvalidArgumentError,
    InvalidDeltaLogError,
    JobProcessError,
    LockLostError,
    MissingDependencyError,
    NotADeltaTableError,
    ParallelSplitError,
    PostgresConnectionError,
    SchemaMismatchError,
    SparkFlowError,
    StepFailedError,
    StorageError,
    TriggerRuleError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.fan_in import SkipParent

ERRORS = [
    UnknownValueError("mode", "apend", ("append", "overwrite")),
    InvalidArgumentError("version", "expected an integer >= 0, got -1", "Use the batch number."),
    NotADeltaTableError("/data/nothing"),
    SchemaMismatchError("/t", [("id", "bigint", "string")]),
    UnsupportedDeltaFeatureError("partitionBy", "Use write(partition_by=...)."),
    StorageError("s3://bucket/t", "read the Delta log of", "Access Denied"),
    ConfigError("profile 'x'", "no such profile", "Use 'local'."),
    StepFailedError("devices", "enrich", "ValueError: bad", "Rerun with run_id='r'."),
    InputNotReadyError("/t", "/t/_spark_flow_ready/latest.json", None, 1.5),
    ParallelSplitError("devices", (("enriched", "ValueError: bad"),)),
    SchemaMismatchError("/out", [("id", "bigint", "string")], fix="Publish to a new output."),
    PostgresConnectionError("loader@db:5432/shop", "Connection refused", "Check the server."),
    MissingDependencyError("the postgres output", "psycopg", "postgres"),
    InvalidDeltaLogError("/t", 3, "commit 3 is not JSON", "Restore it from a backup."),
    ConnectServerError("sc://127.0.0.1:15002", "nothing answered", "Start the server."),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_is_a_spark_flow_error_that_survives_pickling(error: SparkFlowError) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, SparkFlowError)
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_unknown_value_lists_valid_values_and_suggests_the_close_one() -> None:
    error = UnknownValueError("mode", "apend", ("append", "overwrite"))

    assert "'append', 'overwrite'" in str(error)
    assert "Did you mean 'append'?" in str(error)
    assert isinstance(error, ValueError)


def test_schema_mismatch_names_column_and_both_types_and_the_fix() -> None:
    changed = SchemaMismatchError("/t", [("id", "bigint", "string")])
    added = SchemaMismatchError("/t", [("extra", None, "int")])

    assert "id: the table has bigint, the data has string" in str(changed)
    assert "Cast the columns" in str(changed)
    assert "extra: not in the table, the data has int" in str(added)
    assert "merge_schema=True" in str(added)


# -- message hygiene -----------------------------------------------------------------------------

# A flag of the command line (`--wait`, `--first`, `--rerun`): library errors give library
# advice, and `spark-flow` adds its flags (see spark_flow.cli's advice tables).
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z]")
# Punctuation only a careless join produces.
DOUBLED = ("..", ". .", ",.", ";.", ":.", "  ")
HOLDER = {"run_id": "r1", "host": "h", "pid": 1, "since": "2024-01-01", "lease_until": "later"}


def every_error(end: str) -> list[SparkFlowError]:
    """Each error class with typical arguments; texts that come from elsewhere end with `end`."""
    return [
        UnknownValueError("mode", "apend", ("append", "overwrite")),
        InvalidArgumentError("version", f"expected an integer >= 0, got -5{end}",
                             f"Use the batch number, e.g. a date as YYYYMMDD{end}"),
        NotADeltaTableError("/data/nothing"),
        SchemaMismatchError("/t", [("id", "bigint", "string")]),
        SchemaMismatchError("/t", [("id", None, "string")], fix=f"Publish to a new output{end}"),
        UnsupportedDeltaFeatureError("partitionBy", f"Use write(partition_by=['day']){end}"),
        StorageError("s3://bucket/t", "read the Delta log of", f"Access Denied{end}"),
        ConfigError("profile 'x'", f"no such profile{end}", f"Use 'local'{end}"),
        StepFailedError("devices_loader", "sink",
                        f"InvalidArgumentError: version: expected an integer >= 0, got -5. Use "
                        f"the batch number, e.g. a date as YYYYMMDD{end}",
                        f"Rerun with run_id='r'{end}"),
        InputNotReadyError("/t", "/t/_spark_flow_ready/latest.json", "2024-01-01", 1.5),
        ParallelSplitError("devices", (("enriched", f"ValueError: bad{end}"),)),
        TriggerRuleError("cube", "all_success", None,
                         (("hour=03", "failed", f"ValueError: late{end}"),), 0.5),
        ConcurrentRunError("devices_loader", None, HOLDER, waited=2.0),
        DependsOnPastError("visits_trends", "2024-01-02", "2024-01-01", "never ran"),
        LockLostError("visits_trends", "2024-01-02", "3f2a9c1b7d4e"),
        JobProcessError("devices_loader", 1, f"step 'sink' failed{end}"),
        PostgresConnectionError("loader@db:5432/shop", f"Connection refused{end}",
                                f"Check the server{end}"),
        MissingDependencyError("the postgres output", "psycopg", "postgres"),
        ConnectServerError("sc://127.0.0.1:15002", f"nothing answered{end}",
                           f"Start the server{end}"),
        ArgumentLocationError("--input", "/data/in", "expected an existing file or folder, "
                              "found nothing there", f"Rerun{end}",
                              f"[PATH_NOT_FOUND] Path does not exist: file:/data/in{end}"),
        SkipParent(f"no new file for hour 07{end}"),
        InvalidDeltaLogError("/t", 2, f"the commit of version 2 is missing{end}",
                             f"Restore the log's files from a backup{end}"),
        InvalidDeltaLogError("/t", None, f"_last_checkpoint is not JSON{end}", f"Delete it{end}"),
    ]  # fmt: skip


@pytest.mark.parametrize("end", ["", "."], ids=["cause-without-period", "cause-with-period"])
@pytest.mark.parametrize("index", range(len(every_error(""))))
def test_no_message_doubles_punctuation(index: int, end: str) -> None:
    error = every_error(end)[index]

    for line in str(error).splitlines():
        assert not [d for d in DOUBLED if d in line.strip()], f"{type(error).__name__}: {line!r}"


@pytest.mark.parametrize("index", range(len(every_error(""))))
def test_a_message_of_several_lines_reads_as_sentences_when_flattened(index: int) -> None:
    # Reports, stderr and the run history show a message on one line, its line breaks spaces:
    # every line but the last ends a sentence or a clause, so none runs into the next.
    error = every_error("")[index]

    for line in str(error).splitlines()[:-1]:
        assert line.rstrip()[-1:] in (".", ":", ";", "?", "!"), f"{type(error).__name__}: {line!r}"


def test_every_error_class_of_the_package_has_a_message_case() -> None:
    # Classes defined outside errors.py (SkipParent) are raised too: every module is imported,
    # then the hierarchy walked, so a new class anywhere needs its case in every_error().
    for module in pkgutil.walk_packages(spark_flow.__path__, "spark_flow."):
        importlib.import_module(module.name)
    found, pending = set(), [SparkFlowError]
    while pending:
        kind = pending.pop()
        found.add(kind)
        pending += kind.__subclasses__()
    abstract = {c for c in found if c.__name__.startswith("_")}  # shared bases, never raised

    assert found - abstract - {SparkFlowError} <= {type(e) for e in every_error("")}


# ArgumentLocationError names a bundled job's argument (`--input`) by design.
@pytest.mark.parametrize(
    "error",
    [e for e in every_error("") if not isinstance(e, ArgumentLocationError)],
    ids=lambda e: type(e).__name__,
)
def test_library_errors_give_library_advice_not_command_line_flags(error: SparkFlowError) -> None:
    assert not CLI_FLAG.search(str(error)), str(error)


def test_a_step_failure_caused_by_a_sentence_keeps_one_period() -> None:
    error = every_error(".")[8]

    assert "YYYYMMDD. Rerun with run_id='r'." in str(error)


def test_an_invalid_log_names_the_table_the_version_and_the_defect() -> None:
    at_version = InvalidDeltaLogError("/t", 2, "the commit of version 2 is missing", "Restore it.")
    whole_log = InvalidDeltaLogError("/t", None, "_last_checkpoint is not JSON", "Delete it.")

    assert str(at_version) == (
        "expected a valid Delta log at '/t', but it is broken at version 2: the commit of "
        "version 2 is missing. Restore it."
    )
    assert "but it is broken: _last_checkpoint is not JSON. Delete it." in str(whole_log)
    assert isinstance(at_version, ValueError)
