"""Where a batch's input rows went: `Accounting`, and the notes that explain a gap."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_flow.errors import InvalidArgumentError

__all__ = ["Accounting", "counted", "nothing_read"]


@dataclass(frozen=True)
class Accounting:
    """Where a run's input rows went: `rows_read = written + rejected` for every output.

    Attributes:
        rows_read: rows this run read (0 when every write was already committed).
        rows_written: per output, rows this run committed there.
        rows_rejected: per reason, rows rejected (every reason, zeros included).
        note: why the sum does not hold, when it does not (e.g. an output already held the
            batch); required then, so a report never shows a gap without a reason.
    """

    rows_read: int
    rows_written: Mapping[str, int]
    rows_rejected: Mapping[str, int] = field(default_factory=dict)
    note: str | None = None

    def __post_init__(self) -> None:
        counts = [self.rows_read, *self.rows_written.values(), *self.rows_rejected.values()]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise InvalidArgumentError(
                "Accounting", f"row counts are integers >= 0, got {counts}", "Pass row counts."
            )
        if not self.balanced and not self.note:
            raise InvalidArgumentError(
                "note",
                f"{self.rows_read} rows read is not rows written {dict(self.rows_written)} "
                f"+ rejected {dict(self.rows_rejected)}, and no note says why",
                "Say in the note why rows read differ from rows written and rejected.",
            )

    @property
    def balanced(self) -> bool:
        """Every output's rows written plus the rows rejected are the rows read."""
        rejected = sum(self.rows_rejected.values())
        return all(self.rows_read == n + rejected for n in self.rows_written.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_written": dict(self.rows_written),
            "rows_rejected": dict(self.rows_rejected),
            "balanced": self.balanced,
            "note": self.note,
        }


def counted(
    rows_read: int,
    written: Mapping[str, int],
    rejected: Mapping[str, int],
    *,
    skipped: Mapping[str, str] | None = None,
    why: str | None = None,
) -> Accounting:
    """The accounting of rows counted as they were written; the note names what explains a gap.

    Args:
        rows_read: rows counted.
        written: rows committed per output.
        rejected: rows rejected per reason.
        skipped: outputs that already held the batch, and why.
        why: why rows written differ from rows read otherwise, e.g. `aggregated by day`.
    """
    notes = [why] if why else []
    if skipped:
        held = "; ".join(f"{output} ({reason})" for output, reason in skipped.items())
        notes.append(f"already held this batch: {held}")
    return Accounting(rows_read, written, rejected, note="; ".join(notes) or None)


def nothing_read(outputs: Iterable[str], reasons: Iterable[str]) -> Accounting:
    """The accounting of a batch every write of which was already committed."""
    return Accounting(
        0,
        dict.fromkeys(outputs, 0),
        dict.fromkeys(reasons, 0),
        note="nothing read: every write of this batch was already committed",
    )
