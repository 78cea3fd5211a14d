"""Small checks shared by the pattern modules: usable names, one-line error summaries, and
how Spark matches column names."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_flow.errors import InvalidArgumentError, SparkFlowError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TRACEBACK = "Traceback (most recent call last):"
_JVM_TRACE = "JVM stacktrace:"
_SQL_STATE = re.compile(r"SQLSTATE: \w+")


def check_name(kind: str, name: str) -> None:
    """Reject a step, branch or split name that cannot also name a folder, tag or app id."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            kind,
            f"{name!r} is not a usable name (it also names folders, Spark tags and app ids)",
            "Use letters, digits, '_', '.' or '-', starting with a letter, digit or '_'.",
        )


def check_unique(kind: str, owner: str, names: list[str], why: str) -> None:
    """Reject names used twice within one definition (steps of a sequence, branches of a split)."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgumentError(
            kind, f"{owner} names {duplicates} more than once", f"Name each differently: {why}."
        )


def check_max_parallel(value: object, what: str) -> None:
    """Reject a `max_parallel` that is neither None nor an integer >= 1 (a bool is no count)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidArgumentError(
            "max_parallel",
            f"expected an integer >= 1, got {value!r}",
            f"Pass how many {what} may run at once, or None for all.",
        )


def error_summary(exc: BaseException) -> str:
    """One line about an error; for a Python worker's traceback, its last line says the most."""
    text = str(exc)
    if _TRACEBACK in text:
        # Spark Connect prefixes the traceback ("[PYTHON_EXCEPTION] ...: Traceback ...") and
        # may follow it with a SQLSTATE line and the server's JVM stack trace.
        worker = text[text.rindex(_TRACEBACK) :].split(_JVM_TRACE, 1)[0]
        lines = [line.strip() for line in worker.splitlines() if line.strip()]
        if lines and _SQL_STATE.fullmatch(lines[-1]):
            lines.pop()
        if lines:
            return lines[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("An error occurred while calling") and len(lines) > 1:
        return lines[1].lstrip(": ")  # py4j: the JVM exception follows on the next line
    return f"{type(exc).__name__}: {lines[0]}"


def one_line(exc: BaseException) -> str:
    """Our errors in full (they say what to do), others by their most telling line."""
    if isinstance(exc, SparkFlowError):
        return " ".join(str(exc).split())
    return error_summary(exc)


def failure_details(exc: BaseException) -> dict[str, Any]:
    """What a failed run reports beyond its error, e.g. a split's per-branch outcomes."""
    details = getattr(getattr(exc, "report", None), "as_dict", None)
    return {"details": details()} if callable(details) else {}


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs on this host (an exited, unreaped one does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): kill(0) said enough
        return True


def column_key(df: DataFrame | None) -> Callable[[str], str]:
    """How Spark matches column names: in any case, unless `df`'s session sets
    spark.sql.caseSensitive (a schema alone, without a session: Spark's default)."""
    if df is None:
        return str.lower
    sensitive = str(df.sparkSession.conf.get("spark.sql.caseSensitive", "false")).lower()
    return str if sensitive == "true" else str.lower


def analysed(df: DataFrame) -> DataFrame:
    """`df`, once Spark has analysed its plan (a column it cannot resolve raises here).

    Classic PySpark analyses a DataFrame as it is built; Spark Connect only when asked (its
    schema, an action). Asking where a step or a parent builds it makes such an error that
    step's or parent's failure on both, not a later one's. One metadata request, no job.
    """
    df.schema  # noqa: B018  (the analysis is the point)
    return df
