"""Logical dates: parsing them, the days of a backfill, and Airflow's `{ds}` macros."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from spark_flow.errors import InvalidArgumentError

__all__ = ["daily", "expand", "parse_date"]


def parse_date(text: str, argument: str = "date") -> date:
    """An ISO date (YYYY-MM-DD), or InvalidArgumentError saying what was given."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            argument, f"{text!r} is not a date in YYYY-MM-DD form", "Write it like 2024-01-31."
        ) from None


def daily(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included."""
    if start > end:
        raise InvalidArgumentError(
            "dates", f"start {start} is after end {end}", "Give a start on or before the end."
        )
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def expand(argv: Iterable[str], logical_date: date) -> list[str]:
    """Substitute Airflow's `{ds}` (YYYY-MM-DD) and `{ds_nodash}` (YYYYMMDD) in job arguments.

    Other braces are left alone: job arguments may hold JSON or SQL.
    """
    ds = logical_date.isoformat()
    return [arg.replace("{ds_nodash}", ds.replace("-", "")).replace("{ds}", ds) for arg in argv]
