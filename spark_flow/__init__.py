"""spark_flow: the data-flow design patterns of chapter 6 as PySpark helpers.

The foundation: `get_session` builds a session from a profile in `conf/` and picks a Delta
backend; `spark_flow.delta` reads and idempotently writes Delta tables on either backend.
Sequence patterns: `LocalSequencer` (Local Sequencer with restart boundaries) and readiness markers
(`mark_ready`, `wait_until_ready`, `read_ready`) for the Isolated Sequencer.
Fan-in patterns: `union_by_name` (by name, flat), `join_fan_in`, partitions listed and read in
one scan, and `FanIn` with Airflow's trigger rules and completeness for the Unaligned Fan-In.
Fan-out patterns: `ParallelSplit` of `Branch`es over one persisted read, `ExclusiveChoice` with
the `route_by_*` routers, and the idempotent output writers (`output_writer`, `register_output`);
in a stream, `ParallelSplit.for_each_batch` and `for_each_batch` write each micro-batch once.
Orchestration: `SingleRunner` (one run at a time, a lease lock, depends_on_past) and
`ConcurrentRunner` (bounded backfills), jobs' `RunPolicy`, and the run history in `RunState`.
"""

from __future__ import annotations

from spark_flow.delta import WriteResult, enable_delta
from spark_flow.errors import (
    ConcurrentRunError,
    ConfigError,
    DependsOnPastError,
    InputNotReadyError,
    InvalidArgumentError,
    NotADeltaTableError,
    ParallelSplitError,
    SchemaMismatchError,
    SparkFlowError,
    StepFailedError,
    TriggerRuleError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.fan_in import (
    CompletenessRecord,
    FanIn,
    FanInReport,
    PartitionParents,
    SkipParent,
    TaskParents,
    add_completeness_columns,
    join_fan_in,
    list_partitions,
    read_partitions,
    record_completeness,
    union_by_name,
)
from spark_flow.fan_out import (
    Branch,
    ExclusiveChoice,
    ParallelSplit,
    Route,
    SplitReport,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)
from spark_flow.markers import Marker, mark_ready, read_ready, wait_until_ready
from spark_flow.outputs import MicroBatchWriter, for_each_batch, output_writer, register_output
from spark_flow.runners import (
    BackfillReport,
    ConcurrentRunner,
    RunContext,
    RunLock,
    RunPolicy,
    SingleRunner,
)
from spark_flow.runners.state import RunRecord, RunState
from spark_flow.sequence import LocalSequencer, SequenceReport, Step, sql_step, step
from spark_flow.session import Profile, get_session, load_profile

__all__ = [
    "BackfillReport",
    "Branch",
    "CompletenessRecord",
    "ConcurrentRunError",
    "ConcurrentRunner",
    "ConfigError",
    "DependsOnPastError",
    "ExclusiveChoice",
    "FanIn",
    "FanInReport",
    "InputNotReadyError",
    "InvalidArgumentError",
    "LocalSequencer",
    "Marker",
    "MicroBatchWriter",
    "NotADeltaTableError",
    "ParallelSplit",
    "ParallelSplitError",
    "PartitionParents",
    "Profile",
    "Route",
    "RunContext",
    "RunLock",
    "RunPolicy",
    "RunRecord",
    "RunState",
    "SchemaMismatchError",
    "SequenceReport",
    "SingleRunner",
    "SkipParent",
    "SparkFlowError",
    "SplitReport",
    "Step",
    "StepFailedError",
    "TaskParents",
    "TriggerRuleError",
    "UnknownValueError",
    "UnsupportedDeltaFeatureError",
    "WriteResult",
    "add_completeness_columns",
    "enable_delta",
    "for_each_batch",
    "get_session",
    "join_fan_in",
    "list_partitions",
    "load_profile",
    "mark_ready",
    "output_writer",
    "read_partitions",
    "read_ready",
    "record_completeness",
    "register_output",
    "route_by_date",
    "route_by_parameter",
    "route_by_schema",
    "sql_step",
    "step",
    "union_by_name",
    "wait_until_ready",
]
