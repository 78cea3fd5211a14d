"""Our errors, raised in the server's Python data sources, raised again as themselves on a client.

On Spark Connect the `delta` data sources run in the server's Python processes. An error of ours
raised there reaches the client as an `AnalysisException` (or a `PythonException`) whose text is
the server's traceback: the type is lost, and with it `except NotADeltaTableError:`. Errors keep
their facts in `args` (see `spark_flow.errors`), so the server side notes them in the traceback
as one JSON line, and the client builds the same error from it.

The note is data, never code: only a `SparkFlowError` subclass of `spark_flow.errors` is built,
by its constructor, from JSON values. A server on Python 3.10 (no exception notes) leaves the
error as Spark raised it.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from spark_flow import errors
from spark_flow.errors import SparkFlowError

log = logging.getLogger(__name__)

MARK = "spark_flow.error="
_Method = TypeVar("_Method", bound=Callable[..., Any])


@contextmanager
def noted() -> Iterator[None]:
    """Note a `SparkFlowError` raised in the block in its traceback text (server side)."""
    try:
        yield
    except SparkFlowError as error:
        if hasattr(error, "add_note"):  # Python 3.11+
            facts = {"type": type(error).__name__, "args": list(error.args)}
            error.add_note(MARK + json.dumps(facts, default=str))
        raise


def noting(method: _Method) -> _Method:
    """`method` (of a data source, its reader or writer) with its errors `noted()`."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def rows(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with noted():
                yield from method(*args, **kwargs)

        return cast(_Method, rows)

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with noted():
            return method(*args, **kwargs)

    return cast(_Method, call)


@contextmanager
def as_ours() -> Iterator[None]:
    """Raise an error of ours that a data source raised in a Python process of Spark's (the
    driver's too, on a classic session) as itself, not as the AnalysisException around it."""
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as exc:
        ours = recovered(exc)
        if ours is None:
            raise
        raise ours from exc


def recovered(failure: BaseException) -> SparkFlowError | None:
    """The error of ours `failure`'s text carries a note of, built again; else None."""
    text = str(failure)
    start = text.rfind(MARK)
    if start < 0:
        return None
    try:
        facts, _ = json.JSONDecoder().raw_decode(text, start + len(MARK))
        kind = getattr(errors, str(facts["type"]), None)
        if not (isinstance(kind, type) and issubclass(kind, SparkFlowError)):
            return None
        return kind(*facts["args"])
    except (ValueError, TypeError, KeyError) as unreadable:
        log.debug("a spark_flow error note that does not rebuild: %s", unreadable)
        return None
