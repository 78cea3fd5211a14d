"""spark_flow: the data-flow design patterns of chapter 6 as PySpark helpers.

The foundation: `get_session` builds a session from a profile in `conf/` and picks a Delta
backend; `spark_flow.delta` reads and idempotently writes Delta tables on either backend.
Sequence patterns: `Sequence` (Local Sequencer with restart boundaries) and readiness markers
(`mark_ready`, `wait_until_ready`, `read_ready`) for the Isolated Sequencer.
Fan-out patterns: `ParallelSplit` of `Branch`es over one persisted read, `ExclusiveChoice` with
the `route_by_*` routers, and the idempotent output writers (`output_writer`, `register_output`).
"""

from __future__ import annotations

from spark_flow.delta import WriteResult, enable_delta
from spark_flow.errors import (
    ConfigError,
    InputNotReadyError,
    InvalidArgumentError,
    NotADeltaTableError,
    ParallelSplitError,
    SchemaMismatchError,
    SparkFlowError,
    StepFailedError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.fan_out import (
    Branch,
    Decision,
    ExclusiveChoice,
    ParallelSplit,
    SplitReport,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)
from spark_flow.markers import Marker, mark_ready, read_ready, wait_until_ready
from spark_flow.outputs import output_writer, register_output
from spark_flow.sequence import Sequence, SequenceResult, Step, sql_step, step
from spark_flow.session import Profile, get_session, load_profile

__all__ = [
    "Branch",
    "ConfigError",
    "Decision",
    "ExclusiveChoice",
    "InputNotReadyError",
    "InvalidArgumentError",
    "Marker",
    "NotADeltaTableError",
    "ParallelSplit",
    "ParallelSplitError",
    "Profile",
    "SchemaMismatchError",
    "Sequence",
    "SequenceResult",
    "SparkFlowError",
    "SplitReport",
    "Step",
    "StepFailedError",
    "UnknownValueError",
    "UnsupportedDeltaFeatureError",
    "WriteResult",
    "enable_delta",
    "get_session",
    "load_profile",
    "mark_ready",
    "output_writer",
    "read_ready",
    "register_output",
    "route_by_date",
    "route_by_parameter",
    "route_by_schema",
    "sql_step",
    "step",
    "wait_until_ready",
]
