"""visits_cube through spark-submit on data made by `spark-flow generate visits`."""

from __future__ import annotations

from pathlib import Path

import pytest
from _jobs import BIN, reports, run, submit, table_rows

pytestmark = pytest.mark.e2e


def test_aligned_fails_on_missing_hours_and_unaligned_writes_half_a_day(tmp_path: Path) -> None:
    visits, output = tmp_path / "visits", tmp_path / "cube"
    generated = run(
        str(BIN / "spark-flow"), "generate", "visits", "--date", "2024-03-10",
        "--rows-per-hour", "30", "--output", str(visits),
        "--skip-hours", ",".join(str(h) for h in range(12, 24)),
    )  # fmt: skip
    common = ("--input", str(visits), "--date", "2024-03-10", "--output", str(output))

    aligned = submit("visits_cube", *common, "--mode", "aligned")
    unaligned = submit("visits_cube", *common, "--mode", "unaligned", "--min-completeness", "0.5")

    assert generated.returncode == 0, generated.stderr
    assert aligned.returncode == 1
    (failure,) = reports(aligned.stdout)
    assert "date=2024-03-10/hour=12 failed (missing" in str(failure["error"])
    assert "date=2024-03-10/hour=23 failed (missing" in str(failure["error"])
    assert unaligned.returncode == 0, unaligned.stderr[-3000:]
    (report,) = reports(unaligned.stdout)
    assert report["completeness"] == 0.5
    assert report["missing_hours"] == [str(h) for h in range(12, 24)]
    total = table_rows(
        output,
        "SELECT visits, completeness, is_approximate FROM t "
        "WHERE page IS NULL AND browser IS NULL AND country IS NULL",
    )
    assert total == [{"visits": 12 * 30, "completeness": 0.5, "is_approximate": True}]
