from __future__ import annotations

import pickle

import pytest

from spark_flow.errors import (
    ConfigError,
    InputNotReadyError,
    InvalidArgumentError,
    MissingDependencyError,
    NotADeltaTableError,
    ParallelSplitError,
    PostgresConnectionError,
    SchemaMismatchError,
    SparkFlowError,
    StepFailedError,
    StorageError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)

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
