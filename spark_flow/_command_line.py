"""Options `spark-flow` reads wherever they stand on a command line, and the run's logical date.

`spark-flow run JOB ...` hands what follows the job's name to the job, and `spark-flow submit JOB
...` to spark-submit; a few options belong to spark-flow wherever the user typed them: the run's
`--date`, submit's `--profile`. Reading them only before the job's name is the trap this module
closes: `run visits_trends --input x --date 2024-02-02` once ran with the logical date *today*
while its job read 2024-02-02, and depends_on_past refused it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, datetime, timezone

from spark_flow.arguments import Refused, iso_date, seconds
from spark_flow.errors import InvalidArgumentError

TODAY = "today"
# A bundled job's own logical-date option, by the names jobs give it.
JOB_DATE_OPTIONS = ("--date", "--run-date")


def logical_date_value(value: str) -> date:
    """argparse type of the run's `--date`: YYYY-MM-DD, or `today` said explicitly."""
    if value == TODAY:
        return datetime.now(timezone.utc).date()
    return iso_date(value)


def _job_date(value: str) -> date:
    try:
        return logical_date_value(value)
    except Refused as exc:
        raise InvalidArgumentError("--date", exc.problem, exc.fix) from None


def pop_option(argv: Sequence[str], option: str) -> tuple[list[str], list[str]]:
    """The values of `option` (`--x V` or `--x=V`) in `argv`, and `argv` without them.

    Example:
        >>> pop_option(["--input", "x", "--date=2024-01-02"], "--date")
        (['2024-01-02'], ['--input', 'x'])
    """
    values: list[str] = []
    rest: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == option:
            value = next(arguments, None)
            if value is None:
                raise InvalidArgumentError(option, "expected a value after it, found none",
                                           f"Write {option} VALUE.")  # fmt: skip
            values.append(value)
        elif argument.startswith(f"{option}="):
            values.append(argument.split("=", 1)[1])
        else:
            rest.append(argument)
    return values, rest


def run_date(
    job: str, given: date | None, job_args: Sequence[str], job_parser: argparse.ArgumentParser
) -> tuple[date, list[str]]:
    """The logical date of `spark-flow run JOB` and the arguments its job gets.

    `--date` is the run's whether it stands before the job's name or among the job's arguments,
    and so is the job's own date option (`--date`, or `--run-date`). A job that declares one
    gets the run's date there (a `{ds}` macro in it expands to that date). Two different dates,
    or none for a job that takes one, are refused rather than guessed; a job that takes no
    date runs as of today.

    Raises:
        InvalidArgumentError: the dates disagree, or a job that takes a date got none.
    """
    declared = [o for o in JOB_DATE_OPTIONS if o in job_parser._option_string_actions]
    values, rest = [], list(job_args)
    for option in dict.fromkeys(["--date", *declared]):
        found, rest = pop_option(rest, option)
        values += found
    # A macro is the job's own templated date: it becomes the run's date when the run expands it.
    macros = [v for v in values if "{" in v]
    found_dates = sorted({*(_job_date(v) for v in values if "{" not in v), *filter(None, [given])})
    right_form = f"spark-flow run {job} --date YYYY-MM-DD [job args]"
    if len(found_dates) > 1:
        raise InvalidArgumentError(
            "--date",
            f"expected one logical date for the run, found {[d.isoformat() for d in found_dates]}",
            f"Give it once: {right_form} (in the job's arguments, {{ds}} stands for it).",
        )
    if not found_dates and declared:
        raise InvalidArgumentError(
            "--date",
            f"{job} takes a date ({declared[0]}) and the run was given none, so its logical "
            "date would be a guess",
            f"Give it: {right_form}, or --date {TODAY} to mean today.",
        )
    day = found_dates[0] if found_dates else datetime.now(timezone.utc).date()
    if not declared:
        return day, rest
    return day, [*rest, declared[0], macros[0] if macros else day.isoformat()]


def runner_flags(
    job_args: Sequence[str],
    job_parser: argparse.ArgumentParser,
    *,
    first: bool,
    wait: float | None,
) -> tuple[bool, float | None, list[str]]:
    """`spark-flow run`'s `--first` and `--wait SECONDS`, also where they follow the job's name.

    A refused run's advice names them ("Pass --first ..."), and a user adds them at the end of
    the line, where the job's parser would refuse them; a job with an option of that name
    keeps it.

    Returns:
        first, wait and the job's arguments without them.

    Raises:
        InvalidArgumentError: a `--wait` that is not a number of seconds.
    """
    rest = list(job_args)
    own = job_parser._option_string_actions
    if "--first" not in own and "--first" in rest:
        first, rest = True, [argument for argument in rest if argument != "--first"]
    if "--wait" not in own:
        waits, rest = pop_option(rest, "--wait")
        if waits:
            try:
                wait = seconds(waits[-1])
            except Refused as exc:
                raise InvalidArgumentError("--wait", exc.problem, exc.fix) from None
    return first, wait, rest
