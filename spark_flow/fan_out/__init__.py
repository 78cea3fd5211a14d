"""Fan-out patterns: Parallel Split (every branch runs) and Exclusive Choice (exactly one does).

- `_split`: `ParallelSplit` of `Branch`es over one persisted read of the input, each branch
  writing exactly once per `(app_id, txn_version)`; `SplitReport` / `BranchReport` say how
  each branch went, and `ParallelSplit.for_each_batch` runs the split per micro-batch.
- `_choice`: `ExclusiveChoice` resolves a router's `Route` (`route_by_parameter`,
  `route_by_date`, `route_by_schema`) to one `ChosenBranch`, and logs why.
"""

from __future__ import annotations

from spark_flow.fan_out._choice import (
    ChosenBranch,
    ExclusiveChoice,
    Route,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)
from spark_flow.fan_out._split import (
    BRANCH_STATUSES,
    Branch,
    BranchReport,
    BranchStatus,
    ParallelSplit,
    SplitReport,
)

__all__ = [
    "BRANCH_STATUSES",
    "Branch",
    "BranchReport",
    "BranchStatus",
    "ChosenBranch",
    "ExclusiveChoice",
    "ParallelSplit",
    "Route",
    "SplitReport",
    "route_by_date",
    "route_by_parameter",
    "route_by_schema",
]
