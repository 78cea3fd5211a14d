"""A bundled job's arguments, checked while they are parsed: before any Spark session starts.

Every job's `parser()` returns a `JobParser` and declares its arguments with the types here, so
a bad value exits 2 with argparse's one format, `JOB: error: argument --ARG: expected ..., got
...; what to do`, whether the job runs by `spark-submit`, `spark-flow run` or a backfill (which
parses every date's arguments before the first run). A check that needs two arguments at once
(`--route-by date` needs `--run-date`) is added with `JobParser.add_check` and reads the same.

Locations go through `spark_flow.storage`, so the checks are right for every scheme: a local
input must exist; an object-store input is looked up with the environment's credentials, and
when the store cannot be reached from here the run (and Spark's own credentials) decides.

Example:
    >>> parser = JobParser(prog="loader")
    >>> _ = parser.add_argument("--batch-id", type=batch_id)
    >>> parser.parse_args(["--batch-id", "20240131"]).batch_id
    20240131
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

from spark_flow import storage
from spark_flow._common import check_name
from spark_flow.delta import check_txn_version
from spark_flow.errors import InvalidArgumentError, StorageError, _sentences
from spark_flow.runners.dates import parse_date

__all__ = [
    "JobParser",
    "Refused",
    "batch_id",
    "check_argument",
    "count",
    "existing_folder",
    "existing_input",
    "folder_location",
    "fraction",
    "hours",
    "identifier",
    "iso_date",
    "location_named_in",
    "positive_int",
    "positive_seconds",
    "seconds",
    "separate_locations",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
Check = Callable[[argparse.Namespace], None]


class Refused(argparse.ArgumentTypeError):
    """A value one of these types refuses: what was expected and found, and what to do.

    argparse prefixes its text with `argument --ARG:`; `problem` and `fix` stay separate so a
    check can raise the same refusal as an `InvalidArgumentError` naming its argument.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(_sentences(problem, fix))
        self.problem = problem
        self.fix = fix


class JobParser(argparse.ArgumentParser):
    """An `ArgumentParser` that also runs the job's checks across arguments once they parsed.

    A check raises `InvalidArgumentError` naming the argument at fault; it becomes a usage error
    in argparse's format (exit 2), like a value a type refused. A check that cannot reach a
    store (`StorageError`) is left to the run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checks: list[Check] = []

    def add_check(self, check: Check) -> None:
        """Run `check(args)` after every parse; it raises `InvalidArgumentError` to refuse."""
        self._checks.append(check)

    def parse_known_args(  # type: ignore[override]  # one signature for argparse's overloads
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        for check in self._checks:
            try:
                check(parsed)
            except InvalidArgumentError as exc:
                self.error(f"argument {exc}")
            except StorageError as exc:
                # A store this process lacks credentials for (Spark may have them, through
                # Hadoop's settings): as for an input's existence, the run decides.
                log.info(
                    "could not check the arguments on %s (%s); the run will", exc.path, exc.cause
                )
        return parsed, rest


def check_argument(argument: str, kind: Callable[[str], _T], value: str) -> _T:
    """`kind(value)`, its refusal raised as `InvalidArgumentError(argument, ...)` for a check.

    Example: `check_argument("--output", folder_location, args.output)` when only some modes
    write to a folder.
    """
    try:
        return kind(value)
    except Refused as exc:
        raise InvalidArgumentError(argument, exc.problem, exc.fix) from None


# -- values ----------------------------------------------------------------------------------------


# Plain ASCII numbers only: `int()` and `float()` also take `1_000`, `+5`, ` 7 ` and other
# scripts' digits (`١٢`), and a batch id taken that way names a batch the user never wrote.
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _number(
    kind: Callable[[str], _T], value: str, accept: Callable[[_T], bool], expected: str, fix: str
) -> _T:
    """`value` as a `kind` that `accept` takes, written in plain ASCII digits, else Refused.

    No sign is taken: every number here is 0 or more (`-0` is not a batch the user meant).
    """
    form = _DIGITS if kind is int else _DECIMAL
    number = kind(value) if form.fullmatch(value) else None
    if number is None or not accept(number):
        raise Refused(f"expected {expected}, got {value!r}", fix)
    return number


def batch_id(value: str) -> int:
    """A batch id, Delta's txn version: an integer >= 0 in digits 0-9 that fits a long."""
    fix = "Pass the batch number in digits 0-9, e.g. the run date as YYYYMMDD."
    number = _number(int, value, lambda n: n >= 0, "an integer >= 0", fix)
    try:
        check_txn_version(number)
    except InvalidArgumentError as exc:  # only the bound is left to break
        raise Refused(exc.problem, fix) from None
    return number


def positive_int(value: str) -> int:
    """A count of things, at least 1 (files per trigger, branches at once)."""
    return _number(
        int, value, lambda n: n >= 1, "an integer >= 1",
        "Pass a count of at least 1, or leave the option out.",
    )  # fmt: skip


def count(value: str) -> int:
    """A number of things, 0 or more (rows to generate, runs to show)."""
    return _number(int, value, lambda n: n >= 0, "an integer >= 0", "Pass e.g. 10.")


def seconds(value: str) -> float:
    """A duration in seconds, 0 or more (0: look once, do not wait); finite, as clocks are."""
    return _number(
        float, value, lambda n: 0 <= n < math.inf, "a number of seconds >= 0",
        "Pass e.g. 600 for ten minutes.",
    )  # fmt: skip


def positive_seconds(value: str) -> float:
    """A duration in seconds above 0, e.g. the interval between two looks; finite."""
    return _number(
        float, value, lambda n: 0 < n < math.inf, "a number of seconds > 0",
        "Pass e.g. 5 to look every five seconds.",
    )  # fmt: skip


def fraction(value: str) -> float:
    """A fraction from 0 to 1, e.g. the least completeness of a fan-in."""
    return _number(
        float, value, lambda n: 0 <= n <= 1, "a fraction from 0 to 1",
        "Pass e.g. 0.75 for three quarters.",
    )  # fmt: skip


def iso_date(value: str) -> date:
    """A date as YYYY-MM-DD, a day of the calendar.

    Python's `date.fromisoformat` also takes `20240131` and week dates (`2024-W05-3`); a job's
    date names its partitions and batches, so only the one form is taken.
    """
    fix = "Write it like 2024-01-31."
    if not _ISO_DATE.fullmatch(value):
        raise Refused(f"{value!r} is not a date in YYYY-MM-DD form", fix)
    try:
        return parse_date(value)
    except InvalidArgumentError:
        year, month, day = (int(part) for part in value.split("-"))
        wrong = (
            "years start at 0001" if year < 1
            else f"there is no month {month}" if not 1 <= month <= 12
            else f"{value[:7]} has no day {day}"
        )  # fmt: skip
        raise Refused(f"{value!r} is not a date: {wrong}", fix) from None


def identifier(value: str) -> str:
    """A name that also names folders, Spark tags and Delta app ids (a run id, an app id)."""
    try:
        check_name("name", value)
    except InvalidArgumentError as exc:
        raise Refused(exc.problem, exc.fix) from None
    return value


def hours(value: str) -> list[int]:
    """Hours of a day, 0 to 23: a range `5-23` or a list `3,7` (a list: `Column.isin` takes it)."""
    expected, fix = "hours from 0 to 23", "Write a range like 5-23 or a list like 3,7."
    parts = value.split("-") if "-" in value else value.split(",")
    if not all(_DIGITS.fullmatch(part) for part in parts) or (len(parts) > 2 and "-" in value):
        raise Refused(f"expected {expected}, got {value!r}", fix)
    numbers = [int(part) for part in parts]
    found = list(range(numbers[0], numbers[1] + 1)) if "-" in value else numbers
    if not found or any(not 0 <= hour <= 23 for hour in found):
        raise Refused(f"expected {expected}, got {value!r}", fix)
    return found


# -- locations -------------------------------------------------------------------------------------


def existing_input(value: str) -> str:
    """A file or folder that must be there when the job starts: a path, `file:` or store URI."""
    try:
        found = storage.exists(value)
    except InvalidArgumentError as exc:  # not a path at all, or a file: URI of another host
        raise Refused(exc.problem, exc.fix) from None
    except StorageError as exc:
        # This process may lack the store's credentials that Spark has (Hadoop's s3a settings):
        # only a store that answers "not there" refuses the input.
        log.info("could not check that %s exists (%s); the run will", value, exc.cause)
        return value
    if not found:
        raise Refused(
            f"expected an existing file or folder, found nothing at {value!r}",
            "Check the path, or produce the input first.",
        )
    return value


def existing_folder(value: str) -> str:
    """A folder that must be there when the job starts, e.g. the root of hourly partitions."""
    return folder_location(existing_input(value))


def folder_location(value: str) -> str:
    """Where a job writes or waits for a table: it may not exist yet, but must not be a file or
    lie below one: a write could never create it."""
    try:
        local = storage.folder(value)
    except InvalidArgumentError as exc:
        raise Refused(exc.problem, exc.fix) from None
    if storage.is_local(value):
        above = os.path.dirname(local)
        while not os.path.exists(above) and above != os.path.dirname(above):
            above = os.path.dirname(above)
        if os.path.isfile(above):
            raise Refused(f"{value!r} lies below the file {above!r}", "Fix the path.")
    return value


def separate_locations(*arguments: str) -> Check:
    """A check: the locations `arguments` name (`--input`, `--output`) lie apart, none in another.

    A job reads everything below its input, so an output inside it is read back as input by
    the next run (its Parquet files as malformed lines); two outputs in one place write one
    table twice. Arguments left out (None) are not compared.
    """

    def check(args: argparse.Namespace) -> None:
        seen: list[tuple[str, str, str]] = []
        for argument in arguments:
            value = getattr(args, argument.lstrip("-").replace("-", "_"), None)
            if not isinstance(value, str):
                continue
            here = storage.comparable(value)
            for other, other_value, there in seen:
                relation = _relation(here, there)
                if relation:
                    raise InvalidArgumentError(
                        argument,
                        f"expected a location apart from {other} {other_value!r}, got "
                        f"{value!r}, which {relation}",
                        f"Give {argument} a folder of its own, neither in {other} nor holding it.",
                    )
            seen.append((argument, value, here))

    return check


def _relation(here: str, there: str) -> str | None:
    separator = os.sep if here.startswith(os.sep) else "/"
    if here == there:
        return "is the same location"
    if here.startswith(there.rstrip(separator) + separator):
        return "lies inside it"
    if there.startswith(here.rstrip(separator) + separator):
        return "holds it"
    return None


def location_named_in(text: str, args: argparse.Namespace) -> tuple[str, str] | None:
    """The argument (`--input`) whose location `text` names, and that location, if one does.

    Spark names a local location by its absolute path (`file:/abs/in`), a store's by its URI;
    so are they looked for, the longest first (an output's `_delta_log` names the output).
    """
    found: list[tuple[int, str, str]] = []
    for dest, value in vars(args).items():
        if not isinstance(value, str) or not value:
            continue
        try:
            # A local value is matched by its absolute path only: a run id or an app id like
            # "devices_loader" must not be taken for a location because an error mentions it.
            needle = storage.absolute(value)
        except InvalidArgumentError:  # a file: URI of another host: no location of this run
            continue
        if needle in text:
            found.append((len(needle), "--" + dest.replace("_", "-"), value))
    if not found:
        return None
    _, argument, value = max(found)
    return argument, value
