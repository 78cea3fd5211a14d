"""One error hierarchy for the whole toolkit, rooted at `SparkFlowError`.

Every error keeps its facts as attributes (tests and callers read those, not the text) and passes
them to `Exception.__init__` too, so errors pickle and cross thread and process boundaries intact.
Messages say what was expected, what was found, and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _sentences(*parts: str) -> str:
    """`parts` as sentences: each ends with one full stop (or its own ? or !), whatever it brought.

    Causes come from elsewhere (Spark, libpq, another of our errors) and may or may not end with
    a period; joining them blindly doubles it ("YYYYMMDD.. Rerun").
    """
    sentences = []
    for part in parts:
        text = part.strip()
        if text:
            sentences.append(text if text[-1] in ".?!" else text + ".")
    return " ".join(sentences)


class SparkFlowError(Exception):
    """Base class of every error raised by spark_flow."""

    def told(self, advice: str) -> str:
        """The message with another interface's `advice` (a command line's flag) for its own.

        By default `advice` follows the message; an error whose advice names a library call
        (`first=True`) gives it up for `advice`, so a user is told one way, the one they use.
        """
        return _sentences(str(self), advice)


class UnknownValueError(SparkFlowError, ValueError):
    """A choice (mode, backend, profile, output type ...) outside its known values."""

    def __init__(self, key: str, value_received: object, valid_values: Sequence[str]) -> None:
        super().__init__(key, value_received, valid_values)
        self.key = key
        self.value_received = value_received
        self.valid_values = tuple(valid_values)

    def __str__(self) -> str:
        hint = ""
        if isinstance(self.value_received, str):
            close = difflib.get_close_matches(self.value_received, self.valid_values, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
        valid = ", ".join(repr(v) for v in self.valid_values)
        return f"{self.key}={self.value_received!r} is not supported; use one of {valid}.{hint}"


class InvalidArgumentError(SparkFlowError, ValueError):
    """An argument has the right type but a value that cannot work."""

    def __init__(self, argument: str, problem: str, fix: str) -> None:
        super().__init__(argument, problem, fix)
        self.argument = argument
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.argument}: {_sentences(self.problem, self.fix)}"


class NotADeltaTableError(SparkFlowError, FileNotFoundError):
    """A path that was expected to hold a Delta table does not."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return (
            f"expected a Delta table at {self.path!r}, but it has no _delta_log/ with a commit. "
            "Check the path, or write to it first with spark_flow.delta.write()."
        )


class SchemaMismatchError(SparkFlowError, ValueError):
    """A DataFrame's schema does not fit the table it is written to.

    `conflicts` holds `(column, table_type, data_type)`; `table_type` is None for a column the
    table lacks. `fix` replaces the default advice, which is about Delta tables.
    """

    def __init__(
        self, path: str, conflicts: Iterable[tuple[str, str | None, str]], fix: str | None = None
    ) -> None:
        conflicts = tuple(conflicts)
        super().__init__(path, conflicts, fix)
        self.path = path
        self.conflicts = conflicts
        self.fix = fix

    def __str__(self) -> str:
        lines = []
        for column, table_type, data_type in self.conflicts:
            if table_type is None:
                lines.append(f"  {column}: not in the table, the data has {data_type}")
            else:
                lines.append(f"  {column}: the table has {table_type}, the data has {data_type}")
        new_only = all(table_type is None for _, table_type, _ in self.conflicts)
        fix = self.fix or (
            "Pass merge_schema=True (or .option('mergeSchema', 'true')) to add the new columns."
            if new_only
            else "Cast the columns to the table's types before writing, or write to a new table."
        )
        # One column a line; each ends as a clause, so the message flattened to one line (a
        # job's report, a run's history) still reads as sentences.
        return (
            f"schema of the data does not match the table at {self.path!r}:\n"
            + ";\n".join(lines)
            + f".\n{fix}"
        )


class UnsupportedDeltaFeatureError(SparkFlowError, NotImplementedError):
    """The delta-rs bridge was asked for something only the JVM connector can do."""

    def __init__(self, feature: str, fix: str) -> None:
        super().__init__(feature, fix)
        self.feature, self.fix = feature, fix

    def __str__(self) -> str:
        return _sentences(f"the delta-rs backend does not support {self.feature}", self.fix)


class InvalidDeltaLogError(SparkFlowError, ValueError):
    """A Delta table's log breaks the Delta protocol, so no reader can read it right.

    `version` is the table version the defect is at (None: the log as a whole, e.g. its
    `_last_checkpoint`); `defect` says what is wrong, `advice` what to do. The library error
    that found it, if any, is `__cause__`.
    """

    def __init__(self, path: str, version: int | None, defect: str, advice: str) -> None:
        super().__init__(path, version, defect, advice)
        self.path = path
        self.version = version
        self.defect = defect
        self.advice = advice

    def __str__(self) -> str:
        at = "" if self.version is None else f" at version {self.version}"
        return _sentences(
            f"expected a valid Delta log at {self.path!r}, but it is broken{at}: {self.defect}",
            self.advice,
        )


class StorageError(SparkFlowError):
    """A store could not be read or written from this process (credentials, network, scheme).

    `cause` is the store client's own message (deltalake's or pyarrow's); `where` is what
    tried to reach the store: this process, or a Spark Connect server's Python processes.
    """

    def __init__(self, path: str, action: str, cause: str, where: str = "this process") -> None:
        super().__init__(path, action, cause, where)
        self.path = path
        self.action = action
        self.cause = cause
        self.where = where

    def __str__(self) -> str:
        return _sentences(
            f"could not {self.action} {self.path!r}: {self.cause}",
            f"Check the path, and that {self.where} reaches the store with credentials for it: "
            "deltalake and pyarrow take them from the environment (AWS_*, GOOGLE_*, AZURE_* "
            "variables, instance profiles).",
        )


class ConfigError(SparkFlowError, ValueError):
    """A profile or configuration file is missing or malformed."""

    def __init__(self, source: str, problem: str, fix: str) -> None:
        super().__init__(source, problem, fix)
        self.source = source
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.source}: {_sentences(self.problem, self.fix)}"


class StepFailedError(SparkFlowError, RuntimeError):
    """A step of a sequence failed; `step` says which, `__cause__` holds the original error."""

    def __init__(self, sequence: str, step: str, cause: str, resume_hint: str) -> None:
        super().__init__(sequence, step, cause, resume_hint)
        self.sequence = sequence
        self.step = step
        self.cause = cause
        self.resume_hint = resume_hint

    def __str__(self) -> str:
        return _sentences(
            f"step {self.step!r} of sequence {self.sequence!r} failed: {self.cause}",
            self.resume_hint,
        )


class ArgumentLocationError(SparkFlowError, RuntimeError):
    """A job's run failed on the location one of its arguments names (`--input`, `--output`).

    `cause` is the failure's own most telling line (Spark's, Py4J's), kept after ours; the
    original error is `__cause__`.
    """

    def __init__(self, argument: str, location: str, problem: str, fix: str, cause: str) -> None:
        super().__init__(argument, location, problem, fix, cause)
        self.argument = argument
        self.location = location
        self.problem = problem
        self.fix = fix
        self.cause = cause

    def __str__(self) -> str:
        return _sentences(
            f"{self.argument} {self.location!r}: {self.problem}", self.fix, f"Cause: {self.cause}"
        )


class InputNotReadyError(SparkFlowError, TimeoutError):
    """No readiness marker appeared for an input within the wait's timeout."""

    def __init__(self, output: str, marker: str, logical_date: str | None, waited: float) -> None:
        super().__init__(output, marker, logical_date, waited)
        self.output = output
        self.marker = marker
        self.logical_date = logical_date
        self.waited = waited

    def __str__(self) -> str:
        date = f" for logical date {self.logical_date}" if self.logical_date else ""
        return (
            f"no readiness marker{date} at {self.marker} after waiting {self.waited:.1f}s for "
            f"{self.output!r}. Check that the producer job ran and succeeded, or wait longer."
        )


class ParallelSplitError(SparkFlowError, RuntimeError):
    """Branches of a Parallel Split failed or were cancelled; the others ran to completion.

    `failures` holds `(branch, cause)`; `report` is the split's full `SplitReport`.
    """

    def __init__(
        self, split: str, failures: tuple[tuple[str, str], ...], report: Any = None
    ) -> None:
        super().__init__(split, failures, report)
        self.split = split
        self.failures = failures
        self.report = report

    def __str__(self) -> str:
        causes = "; ".join(f"branch {branch!r}: {cause}" for branch, cause in self.failures)
        txn_version = getattr(self.report, "txn_version", None)
        rerun = (
            f"Rerun with txn_version={txn_version}: branches that committed it are skipped, so "
            "only the failed ones write."
            if txn_version is not None
            else "Without a txn_version a rerun writes every branch again; pass one."
        )
        return _sentences(
            f"parallel split {self.split!r}: {len(self.failures)} failed: {causes}", rerun
        )


class TriggerRuleError(SparkFlowError, RuntimeError):
    """A fan-in's trigger rule says its child must not run.

    `not_succeeded` holds `(parent, status, detail)` for every parent that failed, is missing
    or was skipped.
    """

    def __init__(
        self,
        fan_in: str,
        rule: str,
        min_completeness: float | None,
        not_succeeded: tuple[tuple[str, str, str], ...],
        completeness: float,
    ) -> None:
        super().__init__(fan_in, rule, min_completeness, not_succeeded, completeness)
        self.fan_in = fan_in
        self.rule = rule
        self.min_completeness = min_completeness
        self.not_succeeded = not_succeeded
        self.completeness = completeness

    def __str__(self) -> str:
        limit = self.min_completeness
        condition = self.rule + ("" if limit is None else f" and min_completeness={limit}")
        parents = "; ".join(
            f"{name} {status}" + (f" ({detail})" if detail else "")
            for name, status, detail in self.not_succeeded
        )
        return (
            f"fan-in {self.fan_in!r} does not run its child: {condition} is not met at "
            f"{self.completeness:.0%} completeness. Not succeeded: {parents or 'none'}. "
            "Fix or backfill those parents and rerun, or relax the trigger rule."
        )


class ConcurrentRunError(SparkFlowError, RuntimeError):
    """A run's lock (the job's, a key's or a date's) is held by another live run of the job.

    `holder` has the holding run's `run_id`, `host`, `pid`, `since` and `lease_until`; `waited`
    is how long this run waited for it (None: it did not wait).
    """

    def __init__(
        self, job: str, key: str | None, holder: Mapping[str, Any], waited: float | None = None
    ) -> None:
        super().__init__(job, key, holder, waited)
        self.job, self.key, self.holder, self.waited = job, key, dict(holder), waited

    def __str__(self) -> str:
        return self.told("To wait for it, pass wait=SECONDS to the runner")

    def told(self, advice: str) -> str:
        scope = self.job if self.key is None else f"{self.job} [{self.key}]"
        waited = "" if self.waited is None else f" after waiting {self.waited:.1f}s"
        h = self.holder
        return _sentences(
            f"{scope} is already running{waited}: run {h['run_id']} on host {h['host']}, "
            f"pid {h['pid']}, since {h['since']} (lease until {h['lease_until']})",
            "If that process is gone, the next run takes the lock over once its lease has expired",
            advice,
        )


class LockLostError(SparkFlowError, RuntimeError):
    """A run's lock was taken over while it ran (its lease lapsed); `key` as a `RunLock`'s."""

    def __init__(self, job: str, key: str | None, run_id: str) -> None:
        super().__init__(job, key, run_id)
        self.job, self.key, self.run_id = job, key, run_id

    def __str__(self) -> str:
        scope = self.job if self.key is None else f"{self.job} [{self.key}]"
        return _sentences(
            f"run {self.run_id} of {scope} lost its lock while it ran: another run took it over "
            "once its lease lapsed, so the same work may have run twice at once",
            "Check that run's outcome in the job's history, rerun this date if it did not "
            "succeed, and give the lock a lease longer than the longest stall you expect",
        )


class DependsOnPastError(SparkFlowError, RuntimeError):
    """depends_on_past: the last run of the previous logical date did not succeed.

    `found` says what the previous date's history shows ("never ran", "is failed (run ...)").
    """

    def __init__(self, job: str, logical_date: str, previous_date: str, found: str) -> None:
        super().__init__(job, logical_date, previous_date, found)
        self.job, self.logical_date, self.previous_date, self.found = (
            job, logical_date, previous_date, found
        )  # fmt: skip

    def __str__(self) -> str:
        return self.told(
            f"If {self.logical_date} is the job's first date, pass first=True to the runner's "
            "run() or backfill()"
        )

    def told(self, advice: str) -> str:
        return _sentences(
            f"{self.job} for {self.logical_date} depends on its past: the run for "
            f"{self.previous_date} must have succeeded, but it {self.found}",
            f"Run (or fix and rerun) {self.previous_date} first",
            advice,
        )


class JobProcessError(SparkFlowError, RuntimeError):
    """A job run in its own process exited non-zero."""

    def __init__(self, job: str, exit_code: int, cause: str) -> None:
        super().__init__(job, exit_code, cause)
        self.job = job
        self.exit_code = exit_code
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.job} exited with {self.exit_code}: {self.cause}"


class _ServerError(SparkFlowError, ConnectionError):
    """A server spark_flow talks to could not be reached or refused what it was sent."""

    what = "a server"

    def __init__(self, server: str, problem: str, fix: str) -> None:
        super().__init__(server, problem, fix)
        self.server = server
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return _sentences(f"expected {self.what} at {self.server}, but {self.problem}", self.fix)


class PostgresConnectionError(_ServerError):
    """A PostgreSQL server could not be reached or refused the connection.

    `server` describes where it connected (user, host, port, database: never the password);
    `problem` is libpq's message; `fix` what to check for that kind of failure.
    """

    what = "a PostgreSQL server"

    def __str__(self) -> str:
        return _sentences(f"expected {self.what} at {self.server}, but: {self.problem}", self.fix)


class ConnectServerError(_ServerError):
    """A Spark Connect server did not answer, or cannot run what spark_flow sends it.

    `server` is the `sc://` URL (its token parameters left out); `problem` what happened;
    `fix` what to check or install.
    """

    what = "a Spark Connect server"


class MissingDependencyError(SparkFlowError, ImportError):
    """A feature needs an optional package that is not installed."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(feature, package, extra)
        self.feature = feature
        self.package = package
        self.extra = extra

    def __str__(self) -> str:
        return (
            f"{self.feature} needs the {self.package!r} package, which is not installed. "
            f"Install it with the {self.extra!r} extra: pip install 'spark-flow[{self.extra}]'."
        )
