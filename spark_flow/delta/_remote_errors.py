"""Our errors, raised in the server's Python data sources, raised again as themselves on a client.

On Spark Connect the `delta` data sources run in the server's Python processes. An error of ours
raised there reaches the client as an `AnalysisException` (or a `PythonException`) whose text is
the server's traceback: the type is lost, and with it `except NotADeltaTableError:`. Errors keep
their facts in `args` (see `spark_flow.errors`), so the server side notes them in the traceback
as one JSON line, and the client builds the same error from it.

The note is data, never code: only a `SparkFlowError` subclass of `spark_flow.errors` is built,
by its constructor, from JSON values. A server on Python 3.10 (no exception notes) leaves the
error as Spark raised it.

Our own calls recover the error with `as_ours`. A user's own `spark.read.format("delta")` is
no call of ours, so `install` makes pyspark's conversion of JVM and server errors (classic and
Connect) recover it too, as an error of both kinds: `except InvalidDeltaLogError` and
`except AnalysisException` (what delta-spark's users catch) both see it, and its text is ours.
"""

from __future__ import annotations

import functools
import importlib
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
_INSTALLED = "_spark_flow_recovers"
# pyspark's modules that convert a failure into the exception a query raises, by call time.
_CONVERTERS = ("pyspark.errors.exceptions.captured", "pyspark.sql.connect.client.core")
_both_kinds: dict[tuple[type[SparkFlowError], type[BaseException]], type[SparkFlowError]] = {}


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


def install() -> None:
    """Make every query of this process raise an error of ours that a data source noted as
    that error (still an instance of the exception pyspark would have raised)."""
    for name in _CONVERTERS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pyspark without its connect extras
            continue
        convert = getattr(module, "convert_exception", None)
        if convert is not None and not getattr(convert, _INSTALLED, False):
            module.convert_exception = _recovering(convert)  # type: ignore[attr-defined]


def _recovering(convert: Callable[..., BaseException]) -> Callable[..., BaseException]:
    @functools.wraps(convert)
    def converted(*args: Any, **kwargs: Any) -> BaseException:
        failure = convert(*args, **kwargs)
        try:
            ours = recovered(failure)
            return failure if ours is None else _as_both(ours, failure)
        except Exception as unexpected:  # noqa: BLE001 - the failure itself must never be lost
            # to its recovery (a class that cannot be combined, a JVM gone while reading it).
            log.debug("a spark_flow error note not recovered: %r", unexpected)
            return failure

    setattr(converted, _INSTALLED, True)
    return converted


def _as_both(ours: SparkFlowError, failure: BaseException) -> SparkFlowError:
    """`ours`, also an instance of `failure`'s class with its state (condition, server trace)."""
    key = (type(ours), type(failure))
    kind = _both_kinds.get(key)
    if kind is None:
        ours_type = type(ours)
        kind = type(
            ours_type.__name__,
            (ours_type, type(failure)),
            {
                "__module__": ours_type.__module__,
                "__qualname__": ours_type.__qualname__,
                "__str__": ours_type.__str__,  # before the pyspark class's, which prints Spark's
                "__reduce__": lambda error: (ours_type, error.args),
            },
        )
        _both_kinds[key] = kind
    both = kind.__new__(kind, *ours.args)
    both.__dict__.update(vars(failure))
    both.__dict__.update(vars(ours))
    both.args = ours.args
    return both
