"""spark_flow: the data-flow design patterns of chapter 6 as PySpark helpers.

The map, by pattern family (each name below is exported here; `__all__` follows this order):

Sessions and Delta Lake
    `get_session` builds a session from a `Profile` (`load_profile`) and picks a Delta backend;
    `enable_delta` does it for a session built elsewhere. The `delta` module reads and writes
    tables idempotently on either backend (`WriteResult`) and reads their logs (`TableInfo`).
    Object stores are reached with a profile's `StorageSettings` (`spark_flow.storage`).
    `read_files` reads JSON lines, CSV or Parquet inputs on any store (Arrow in Python workers
    where Spark has no filesystem for it).
Status
    `Status`: the one vocabulary every report below uses (`spark_flow.status` says what each
    word means).
Local Sequencer
    `LocalSequencer` of `Step`s (`step`, `sql_step`) with restart boundaries; a run returns a
    `SequenceReport` with one `StepReport` per step.
Validation
    Every input row accounted for: a `Validation` of named `Rule`s splits valid rows from
    rejected ones (`permissive` keeps unparsable lines), writes both (a `ValidatedWrite`: the
    output and its quarantine table, `quarantine_path`) and counts them in an `Accounting`;
    `Tally` counts rows that another pattern writes.
Isolated Sequencer
    Readiness markers between pipelines: `mark_ready`, `wait_until_ready`, `read_ready`
    (`Marker`). Task-based triggers are the bundled jobs' `--trigger`.
Aligned / Unaligned Fan-In
    `union_by_name`, `join_fan_in`; partitions found by `list_partitions` (`PartitionListing`)
    and read in one scan by `read_partitions`; `FanIn` over `TaskParents` or `PartitionParents`
    (or any `FanInParents`) with a `TriggerRule` (a task may raise `SkipParent`), returning a
    `FanInReport` of `ParentOutcome`s; completeness as columns (`add_completeness_columns`)
    and as a table (`record_completeness` of a `CompletenessRecord`).
Parallel Split
    `ParallelSplit` of `Branch`es over one persisted read, exactly once per txn version;
    `SplitReport` with one `BranchReport` per branch.
Exclusive Choice
    `ExclusiveChoice` resolves a router's `Route` (`route_by_parameter`, `route_by_date`,
    `route_by_schema`) to one `ChosenBranch`.
Output writers
    `output_writer` returns a registered `OutputWriter` (`DeltaOutput`, `FileOutput`, the
    PostgreSQL output of `spark_flow.postgres`, or one added with `register_output`);
    `for_each_batch` makes any writer a `MicroBatchWriter` for a stream's `foreachBatch`.
Single / Concurrent Runner
    `SingleRunner` and `ConcurrentRunner` run a task per logical date under a lock, with
    depends_on_past and a `RunPolicy`; a task gets a `RunContext`, a run ends as a
    `RunOutcome`, a backfill as a `BackfillReport`; the history is a `RunState` of `RunRecord`s.
Errors
    Every error is a `SparkFlowError`, picklable, its facts kept as attributes. Bad input:
    `InvalidArgumentError`, `UnknownValueError`, `ConfigError`, `SchemaMismatchError`. Tables
    and stores: `NotADeltaTableError`, `InvalidDeltaLogError`, `UnsupportedDeltaFeatureError`,
    `StorageError`, `PostgresConnectionError`; a Spark Connect server that does not answer or
    cannot import spark_flow: `ConnectServerError`; an optional extra not installed:
    `MissingDependencyError`. A pattern's rule: `StepFailedError`, `InputNotReadyError`,
    `TriggerRuleError`, `ParallelSplitError`. Runners: `ConcurrentRunError`, `DependsOnPastError`,
    `LockLostError`, `JobProcessError`. A bundled job's input or output gone wrong while it ran:
    `ArgumentLocationError` (it names the job's argument).
"""

from __future__ import annotations

from spark_flow import delta
from spark_flow.delta import TableInfo, WriteResult, enable_delta
from spark_flow.errors import (
    ArgumentLocationError,
    ConcurrentRunError,
    ConfigError,
    ConnectServerError,
    DependsOnPastError,
    InputNotReadyError,
    InvalidArgumentError,
    InvalidDeltaLogError,
    JobProcessError,
    LockLostError,
    MissingDependencyError,
    NotADeltaTableError,
    ParallelSplitError,
    PostgresConnectionError,
    SchemaMismatchError,
    SparkFlowError,
    StepFailedError,
    StorageError,
    TriggerRuleError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.fan_in import (
    CompletenessRecord,
    FanIn,
    FanInParents,
    FanInReport,
    ParentOutcome,
    PartitionListing,
    PartitionParents,
    SkipParent,
    TaskParents,
    TriggerRule,
    add_completeness_columns,
    join_fan_in,
    list_partitions,
    read_partitions,
    record_completeness,
    union_by_name,
)
from spark_flow.fan_out import (
    Branch,
    BranchReport,
    ChosenBranch,
    ExclusiveChoice,
    ParallelSplit,
    Route,
    SplitReport,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)
from spark_flow.files import read_files
from spark_flow.markers import Marker, mark_ready, read_ready, wait_until_ready
from spark_flow.outputs import (
    DeltaOutput,
    FileOutput,
    MicroBatchWriter,
    OutputWriter,
    for_each_batch,
    output_writer,
    register_output,
)
from spark_flow.runners import (
    BackfillReport,
    ConcurrentRunner,
    RunContext,
    RunOutcome,
    RunPolicy,
    RunRecord,
    RunState,
    SingleRunner,
)
from spark_flow.sequence import LocalSequencer, SequenceReport, Step, StepReport, sql_step, step
from spark_flow.session import Profile, get_session, load_profile
from spark_flow.status import Status
from spark_flow.storage import StorageSettings
from spark_flow.validation import (
    Accounting,
    Rule,
    Tally,
    ValidatedWrite,
    Validation,
    permissive,
    quarantine_path,
)

__all__ = [
    # Sessions and Delta Lake
    "Profile",
    "StorageSettings",
    "TableInfo",
    "WriteResult",
    "delta",
    "enable_delta",
    "get_session",
    "load_profile",
    "read_files",
    # Status
    "Status",
    # Local Sequencer
    "LocalSequencer",
    "SequenceReport",
    "Step",
    "StepReport",
    "sql_step",
    "step",
    # Validation
    "Accounting",
    "Rule",
    "Tally",
    "ValidatedWrite",
    "Validation",
    "permissive",
    "quarantine_path",
    # Isolated Sequencer
    "Marker",
    "mark_ready",
    "read_ready",
    "wait_until_ready",
    # Aligned / Unaligned Fan-In
    "CompletenessRecord",
    "FanIn",
    "FanInParents",
    "FanInReport",
    "ParentOutcome",
    "PartitionListing",
    "PartitionParents",
    "SkipParent",
    "TaskParents",
    "TriggerRule",
    "add_completeness_columns",
    "join_fan_in",
    "list_partitions",
    "read_partitions",
    "record_completeness",
    "union_by_name",
    # Parallel Split
    "Branch",
    "BranchReport",
    "ParallelSplit",
    "SplitReport",
    # Exclusive Choice
    "ChosenBranch",
    "ExclusiveChoice",
    "Route",
    "route_by_date",
    "route_by_parameter",
    "route_by_schema",
    # Output writers
    "DeltaOutput",
    "FileOutput",
    "MicroBatchWriter",
    "OutputWriter",
    "for_each_batch",
    "output_writer",
    "register_output",
    # Single / Concurrent Runner
    "BackfillReport",
    "ConcurrentRunner",
    "RunContext",
    "RunOutcome",
    "RunPolicy",
    "RunRecord",
    "RunState",
    "SingleRunner",
    # Errors
    "ArgumentLocationError",
    "ConcurrentRunError",
    "ConfigError",
    "ConnectServerError",
    "DependsOnPastError",
    "InputNotReadyError",
    "InvalidArgumentError",
    "InvalidDeltaLogError",
    "JobProcessError",
    "LockLostError",
    "MissingDependencyError",
    "NotADeltaTableError",
    "ParallelSplitError",
    "PostgresConnectionError",
    "SchemaMismatchError",
    "SparkFlowError",
    "StepFailedError",
    "StorageError",
    "TriggerRuleError",
    "UnknownValueError",
    "UnsupportedDeltaFeatureError",
]
