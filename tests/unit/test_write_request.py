from __future__ import annotations

import pytest

from spark_flow.delta._types import WriteRequest
from spark_flow.errors import InvalidArgumentError, UnknownValueError


@pytest.mark.parametrize(
    ("kwargs", "argument", "fragment"),
    [
        ({"txn_version": 1}, "app_id", "txn_version was given without app_id"),
        ({"app_id": "job"}, "txn_version", "app_id was given without txn_version"),
        ({"app_id": "job", "txn_version": -1}, "txn_version", "expected an integer >= 0, got -1"),
        (
            {"app_id": "job", "txn_version": 2**63},
            "txn_version",
            "expected at most 9223372036854775807",
        ),
        ({"app_id": "job", "txn_version": 1.5}, "txn_version", "got 1.5"),
        ({"app_id": "job", "txn_version": True}, "txn_version", "got True"),
        ({"app_id": " ", "txn_version": 1}, "app_id", "it is empty"),
        ({"path": ""}, "path", "non-empty table path"),
        ({"optimize_write": "yes"}, "optimize_write", "expected True or False, got 'yes'"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_problem(
    kwargs: dict[str, object], argument: str, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        WriteRequest(**{"path": "/t", **kwargs})  # type: ignore[arg-type]

    assert caught.value.argument == argument
    assert fragment in str(caught.value)


def test_unknown_mode_lists_the_modes() -> None:
    with pytest.raises(UnknownValueError) as caught:
        WriteRequest(path="/t", mode="upsert")  # type: ignore[arg-type]

    assert caught.value.key == "mode"
    assert caught.value.valid_values == ("append", "overwrite")


@pytest.mark.parametrize(
    ("last", "version", "skipped"),
    [(None, 1, False), (0, 1, False), (1, 1, True), (5, 3, True), (5, 6, False)],
)
def test_a_version_at_or_below_the_last_committed_one_is_skipped(
    last: int | None, version: int, skipped: bool
) -> None:
    request = WriteRequest(path="/t", app_id="job", txn_version=version)

    assert (request.skip_reason(last) is not None) is skipped


def test_writes_without_a_transaction_are_never_skipped() -> None:
    assert WriteRequest(path="/t").skip_reason(10) is None
