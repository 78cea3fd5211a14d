"""Fan-in patterns: combine many parents into one input, and decide whether the child runs.

One module per idea, all public names re-exported here:

- `_combine`: `union_by_name` (columns matched by name, numbers widened explicitly, one flat
  union) and `join_fan_in` (the JOIN-style fan-in).
- `_partitions`: parents that are partitions of one dataset (`date=.../hour=HH/`), listed
  without reading data and read in one scan, and the completeness columns and record of an
  Unaligned Fan-In.
- `_spec`: `FanIn` runs parents that are tasks concurrently, records each outcome and applies
  an Airflow trigger rule: `all_success` is the Aligned Fan-In, the others (and
  `min_completeness`) the Unaligned one, whose result says how complete it is.
"""

from __future__ import annotations

from spark_flow.fan_in._combine import join_fan_in, union_by_name
from spark_flow.fan_in._partitions import (
    CompletenessRecord,
    PartitionListing,
    list_partitions,
    read_partitions,
    with_completeness,
    write_completeness,
)
from spark_flow.fan_in._spec import (
    FanIn,
    FanInResult,
    ParentOutcome,
    ParentSkipped,
    ParentStatus,
    PartitionParents,
    TriggerRule,
    trigger_rule_met,
)

__all__ = [
    "CompletenessRecord",
    "FanIn",
    "FanInResult",
    "ParentOutcome",
    "ParentSkipped",
    "ParentStatus",
    "PartitionListing",
    "PartitionParents",
    "TriggerRule",
    "join_fan_in",
    "list_partitions",
    "read_partitions",
    "trigger_rule_met",
    "union_by_name",
    "with_completeness",
    "write_completeness",
]
