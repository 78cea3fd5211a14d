"""The one status vocabulary of spark_flow: every report, record and outcome uses these words.

Each word has one meaning wherever it appears (a run of a job, a step of a sequence, a branch
of a split, a parent of a fan-in):

| status         | meaning                                                                   |
|----------------|---------------------------------------------------------------------------|
| `running`      | started and not ended yet (only in the run history, while it runs)        |
| `success`      | ran now and did its work: a run succeeded, a step computed, a branch      |
|                | committed, a parent delivered its data                                    |
| `already_done` | not run again because its work is already there: a date that succeeded    |
|                | before, a branch whose txn version is committed, a step restored from (or |
|                | covered by) a restart boundary's checkpoint                               |
| `skipped`      | had nothing to do this time, by its own decision (Airflow's meaning): a   |
|                | fan-in parent task that raised `ParentSkipped`                            |
| `failed`       | ran and raised; the error says why                                        |
| `cancelled`    | stopped by fail-fast: cancelled while running, or never started because   |
|                | a sibling failed first                                                    |
| `not_run`      | refused before it started: depends_on_past found the previous date not    |
|                | succeeded, or the backfill stopped at an earlier failure                  |

`DONE` holds the statuses after which nothing is left to do (`success`, `already_done`); a
backfill or split whose every part is in `DONE` succeeded.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["DONE", "STATUSES", "Status"]

Status = Literal["running", "success", "already_done", "skipped", "failed", "cancelled", "not_run"]
STATUSES: tuple[Status, ...] = get_args(Status)
DONE: frozenset[Status] = frozenset({"success", "already_done"})
