"""Local Sequencer: a job's logic as a chain of small named steps, with restart boundaries.

A step is `DataFrame -> DataFrame`: a Python function, or SQL over the previous step's output
(`{input}`). Chaining costs nothing: a `LocalSequencer` called on a DataFrame is the same plan
as the steps chained by hand, and Spark still fuses them.

A step marked `boundary=True` is a restart boundary (the chapter's advice: put the line after a
costly intermediate dataset). `LocalSequencer.run` materializes its output as a Delta table under
`<checkpoint_dir>/<sequence>/<run_id>/<step>` and records that it completed. A rerun with the
same run id resumes after the last completed boundary: that boundary and the steps before it are
not computed again (they report `already_done`; `SequenceReport.resumed_from` names the
boundary), and a checkpoint whose schema no longer matches what its step produces is recomputed.

    load = LocalSequencer("devices", [
        step("costly_join", join_reference, boundary=True),
        sql_step("valid", "SELECT * FROM {input} WHERE length(type) > 3"),
        step("enrich", enrich),
    ])
    result = load.run(raw, run_id="2024-01-01", checkpoint_dir="data/checkpoints", sink=write)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pyspark.sql import DataFrame

from spark_flow import delta, storage
from spark_flow._common import analysed, check_name, check_unique, error_summary
from spark_flow.errors import InvalidArgumentError, StepFailedError, UnknownValueError
from spark_flow.session import job_description

__all__ = [
    "STEP_STATUSES",
    "LocalSequencer",
    "SequenceReport",
    "Step",
    "StepReport",
    "StepStatus",
    "sql_step",
    "step",
]

log = logging.getLogger(__name__)

StepFn = Callable[[DataFrame], DataFrame]
StepStatus = Literal["success", "already_done"]
"""The words of `spark_flow.status` a step uses: computed now, or restored from a checkpoint."""
STEP_STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)
_DONE = "_completed.json"


@dataclass(frozen=True)
class Step:
    """One named transformation; `boundary=True` makes it a restart boundary."""

    name: str
    fn: StepFn
    boundary: bool = False

    def __post_init__(self) -> None:
        check_name("step name", self.name)
        if not callable(self.fn):
            raise InvalidArgumentError(
                "fn",
                f"step {self.name!r} got {self.fn!r}",
                "Pass a DataFrame -> DataFrame function.",
            )

    def __call__(self, df: DataFrame) -> DataFrame:
        return self.fn(df)


def _as_step(number: int, given: Step | StepFn) -> Step:
    """A step as given, or a function named by its own name; a lambda has none to give."""
    if isinstance(given, Step):
        return given
    name = getattr(given, "__name__", "")
    if callable(given) and name == "<lambda>":
        raise InvalidArgumentError(
            "steps",
            f"step {number} is a lambda, which has no name to key its checkpoint and logs",
            "Name it: step('name', lambda df: ...), or pass a def function.",
        )
    return Step(name, given)


def step(name: str, fn: StepFn, *, boundary: bool = False) -> Step:
    """A Python step: `fn` takes the previous step's output and returns this step's."""
    return Step(name, fn, boundary)


def sql_step(name: str, query: str, *, boundary: bool = False) -> Step:
    """A SQL step: `{input}` in `query` stands for the previous step's output."""
    if "{input}" not in query:
        raise InvalidArgumentError(
            "query",
            f"SQL step {name!r} does not read its input",
            "Refer to the previous step's output as {input}, e.g. SELECT * FROM {input}.",
        )

    def run_sql(df: DataFrame) -> DataFrame:
        return df.sparkSession.sql(query, input=df)

    return Step(name, run_sql, boundary)


@dataclass(frozen=True)
class StepReport:
    """What happened to one step in a run.

    Attributes:
        name: the step's name.
        status: `success` when the step was computed in this run; `already_done` when a
            resumed run restored it from its boundary's checkpoint (the boundary itself,
            named by `SequenceReport.resumed_from`) or it came before that boundary.
        seconds: how long it took to compute (0 when `already_done`).
        rows_written: rows checkpointed, for a boundary computed in this run.
    """

    name: str
    status: StepStatus
    seconds: float = 0.0
    rows_written: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STEP_STATUSES:
            raise UnknownValueError("status", self.status, STEP_STATUSES)


@dataclass(frozen=True)
class SequenceReport:
    """The sink's return value (or the final DataFrame without a sink) and per-step reports.

    `resumed_from` names the boundary whose checkpoint the run restored, or is None when every
    step was computed.
    """

    output: Any
    run_id: str
    resumed_from: str | None
    steps: tuple[StepReport, ...]


class LocalSequencer:
    """An ordered chain of named steps; see the module docstring.

    Raises:
        InvalidArgumentError: no steps, or two steps with one name (at definition time).
    """

    def __init__(self, name: str, steps: Iterable[Step | StepFn]) -> None:
        check_name("sequence name", name)
        self.name = name
        self.steps: tuple[Step, ...] = tuple(
            _as_step(number, s) for number, s in enumerate(steps, 1)
        )
        if not self.steps:
            raise InvalidArgumentError("steps", f"sequence {name!r} has none", "Add a step.")
        check_unique(
            "steps",
            f"sequence {name!r}",
            [s.name for s in self.steps],
            "names key the checkpoints and the logs",
        )

    def __call__(self, df: DataFrame) -> DataFrame:
        """Chain every step, no checkpoints: `df.transform(sequence)`."""
        for current in self.steps:
            df = current(df)
        return df

    def describe(self) -> str:
        lines = [f"LocalSequencer {self.name!r}: {len(self.steps)} steps"]
        for number, current in enumerate(self.steps, 1):
            mark = "  [restart boundary]" if current.boundary else ""
            lines.append(f"  {number}. {current.name}{mark}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        steps = ", ".join(s.name + ("|" if s.boundary else "") for s in self.steps)
        return f"LocalSequencer({self.name!r}, [{steps}])"

    def run(
        self,
        source: DataFrame,
        *,
        run_id: str,
        checkpoint_dir: str | Path,
        sink: Callable[[DataFrame], Any] | None = None,
        keep_checkpoints: bool = False,
    ) -> SequenceReport:
        """Run the steps on `source`, checkpointing boundaries and resuming a failed run.

        Args:
            source: the input of the first step (lazy; it is not read when a run resumes
                after the first boundary).
            run_id: identifies the run; the same id resumes, another one starts fresh.
            checkpoint_dir: where boundaries materialize their outputs.
            sink: called with the last step's output (e.g. an idempotent write); its return
                value is the result's `output`.
            keep_checkpoints: keep them after success. Without a sink they are always kept,
                since the returned DataFrame reads them.

        Raises:
            StepFailedError: a step failed; its checkpoints stay for the rerun.
        """
        check_name("run_id", run_id)
        # Joined by storage: a Path would spell `s3://b/ck` as the local folder `s3:/b/ck`.
        run_dir = storage.join(str(checkpoint_dir), self.name, run_id)
        start, df, reports = self._resume_point(source, run_dir)
        resumed_from = self.steps[start - 1].name if start else None
        for current in self.steps[start:]:
            df, report = self._run_step(current, df, run_dir, run_id)
            reports.append(report)
        output: Any = df
        if sink is not None:
            output = self._run_sink(sink, df, run_id)
        if sink is not None and not keep_checkpoints:
            _remove(run_dir)
        return SequenceReport(output, run_id, resumed_from, tuple(reports))

    def _resume_point(
        self, source: DataFrame, run_dir: str
    ) -> tuple[int, DataFrame, list[StepReport]]:
        """Where to start: after the last boundary whose checkpoint is complete and current."""
        done = {
            s.name: _read_record(storage.join(run_dir, s.name)) for s in self.steps if s.boundary
        }
        last = max((i for i, s in enumerate(self.steps) if done.get(s.name)), default=None)
        if last is None:
            return 0, source, []
        # Build (not compute) the plans up to the last checkpoint to learn each step's schema.
        probe, resume = source, None
        for index, current in enumerate(self.steps[: last + 1]):
            probe = current(probe)
            record = done.get(current.name)
            if record is None:
                continue
            if record["schema"] == probe.schema.json():
                resume = index
            else:
                log.warning(
                    "checkpoint of step %r no longer matches its output schema; recomputing",
                    current.name,
                )
        if resume is None:
            return 0, source, []
        boundary = self.steps[resume]
        log.info("sequence %s resumes after step %r", self.name, boundary.name)
        restored = delta.read(source.sparkSession, storage.join(run_dir, boundary.name))
        reports = [StepReport(s.name, "already_done") for s in self.steps[: resume + 1]]
        return resume + 1, restored, reports

    def _run_sink(self, sink: Callable[[DataFrame], Any], df: DataFrame, run_id: str) -> Any:
        try:
            with job_description(df.sparkSession, f"{self.name}: sink"):
                return sink(df)
        except Exception as exc:
            raise self._failed("sink", exc, run_id) from exc

    def _failed(self, where: str, exc: Exception, run_id: str) -> StepFailedError:
        return StepFailedError(
            self.name,
            where,
            error_summary(exc),
            f"Rerun with run_id={run_id!r} to resume after the last completed boundary.",
        )

    def _run_step(
        self, current: Step, df: DataFrame, run_dir: str, run_id: str
    ) -> tuple[DataFrame, StepReport]:
        started = time.perf_counter()
        spark = df.sparkSession
        rows = None
        try:
            with job_description(spark, f"{self.name}: {current.name}"):
                df = analysed(current(df))
                if current.boundary:
                    checkpoint = storage.join(run_dir, current.name)
                    rows = _checkpoint(df, checkpoint)
                    df = delta.read(spark, checkpoint)
        except Exception as exc:
            raise self._failed(current.name, exc, run_id) from exc
        seconds = time.perf_counter() - started
        if current.boundary:
            log.info("step %s: %.2fs, %d rows checkpointed", current.name, seconds, rows)
        else:
            log.info("step %s: %.2fs", current.name, seconds)
        return df, StepReport(current.name, "success", seconds, rows)


def _checkpoint(df: DataFrame, path: str) -> int:
    """Materialize a boundary's output and then record it complete (the record comes last)."""
    # A checkpoint is this run's own: a stale one (another schema) is replaced, not evolved.
    _remove(path)
    result = delta.write(df, path)
    record = {"schema": df.schema.json(), "rows": result.rows_written}
    storage.write_text_atomically(storage.join(path, _DONE), json.dumps(record))
    return result.rows_written


def _read_record(path: str) -> dict[str, Any] | None:
    text = storage.read_text(storage.join(path, _DONE))
    if text is None:
        return None
    try:
        record: dict[str, Any] = json.loads(text)
    except ValueError:
        return None
    return record


def _remove(folder: str) -> None:
    """A checkpoint folder removed: locally its tree, on a store every object below it."""
    if storage.is_local(folder):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        storage.delete_files(folder, storage.list_files(folder, recursive=True))
