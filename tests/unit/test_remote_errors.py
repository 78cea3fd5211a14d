"""Our errors raised in a Connect server's data sources, raised again as themselves client-side."""

from __future__ import annotations

import json
import traceback

import pytest

from spark_flow.delta._remote_errors import MARK, noted, noting, recovered
from spark_flow.errors import InvalidArgumentError, NotADeltaTableError, UnknownValueError


def server_text(error: Exception) -> str:
    """What a client receives: Spark's wrapper text around the worker's formatted traceback."""
    try:
        with noted():
            raise error
    except type(error) as raised:
        trace = "".join(traceback.format_exception(raised))
    return f"[PYTHON_DATA_SOURCE_ERROR] Failed to plan Python data source: {trace} SQLSTATE: 38000"


@pytest.mark.parametrize(
    "error",
    [
        NotADeltaTableError("/tables/devices"),
        UnknownValueError("mode", "apend", ("append", "overwrite")),
        InvalidArgumentError("version", "expected an integer >= 0, got -1", "Pass a version."),
    ],
)
def test_an_error_noted_on_the_server_is_built_again_with_its_facts(error: Exception) -> None:
    again = recovered(RuntimeError(server_text(error)))

    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again is not None
    assert json.dumps(again.args) == json.dumps(error.args)


def test_a_generator_method_notes_the_errors_it_raises_while_iterating() -> None:
    @noting
    def rows() -> object:
        yield 1
        raise NotADeltaTableError("/t")

    with pytest.raises(NotADeltaTableError) as raised:
        list(rows())  # type: ignore[call-overload]

    assert any(MARK in note for note in getattr(raised.value, "__notes__", []))


@pytest.mark.parametrize(
    "text",
    [
        "AnalysisException: no note at all",
        MARK + '{"type": "Mapping", "args": []}',  # a name in errors' namespace, not an error
        MARK + '{"type": "SparkFlowError2", "args": []}',  # no such error
        MARK + '{"type": "NotADeltaTableError", "args": [1, 2, 3]}',  # arguments it does not take
        MARK + '{"type": "NotADeltaTableError", "args": [',  # cut short
    ],
)
def test_text_that_is_not_a_note_of_ours_leaves_the_error_as_it_is(text: str) -> None:
    assert recovered(RuntimeError(text)) is None
