"""Fan-in patterns: combine many parents into one input, and decide whether the child runs.

One module per idea, all public names re-exported here:

- `_combine`: `union_by_name` (columns matched by name, numbers widened explicitly, one flat
  union) and `join_fan_in` (the JOIN-style fan-in).
- `_partitions`: parents that are partitions of one dataset (`date=.../hour=HH/`), listed
  without reading data and read in one scan; an Unaligned Fan-In's completeness, on its rows
  (`add_completeness_columns`) and in a companion table (`record_completeness`).
- `_parents`: the parents as a strategy: `TaskParents` (DataFrames or tasks run concurrently,
  which may raise `SkipParent`) and `PartitionParents` settle into `ParentOutcome`s.
- `_spec`: `FanIn`, a frozen definition that settles its parents and applies an Airflow
  trigger rule: `all_success` is the Aligned Fan-In, the others (and `min_completeness`) the
  Unaligned one; `run` returns a `FanInReport`.
"""

from __future__ import annotations

from spark_flow.fan_in._combine import join_fan_in, union_by_name
from spark_flow.fan_in._parents import (
    FanInParents,
    ParentOutcome,
    ParentStatus,
    PartitionParents,
    SettledParents,
    SkipParent,
    TaskParents,
)
from spark_flow.fan_in._partitions import (
    CompletenessRecord,
    PartitionListing,
    add_completeness_columns,
    list_partitions,
    read_partitions,
    record_completeness,
)
from spark_flow.fan_in._spec import FanIn, FanInReport, TriggerRule, trigger_rule_met

__all__ = [
    "CompletenessRecord",
    "FanIn",
    "FanInParents",
    "FanInReport",
    "ParentOutcome",
    "ParentStatus",
    "PartitionListing",
    "PartitionParents",
    "SettledParents",
    "SkipParent",
    "TaskParents",
    "TriggerRule",
    "add_completeness_columns",
    "join_fan_in",
    "list_partitions",
    "read_partitions",
    "record_completeness",
    "trigger_rule_met",
    "union_by_name",
]
