"""Generated datasets for demos, tests and benchmarks (`spark-flow generate ...`).

`DEVICE_SCHEMA` and `VISIT_SCHEMA` say what these functions write, for reading generated data
back (the demo, tests, benchmarks). The contract is the bundled jobs' input schemas in
`jobs/_schemas.py`: the data generated here is made to fit them, and
`tests/spark/test_generated_data.py` checks it does. The library keeps its own copy because it
never imports `jobs/` (jobs depend on spark_flow, not the reverse).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = ["DEVICE_SCHEMA", "VISIT_SCHEMA", "generate_devices", "generate_visits"]

DEVICE_SCHEMA = "type STRING, full_name STRING, version STRING"
_TYPES = ("galaxy", "iphone", "pixel", "nokia", "oneplus")
_SHORT_TYPES = ("tv", "mac", "x")  # invalid: the loader keeps length(type) > 3
_VERSIONS = ("1.0", "2.1", "3.5", "14.2")
VISIT_SCHEMA = (
    "visit_id STRING, event_time TIMESTAMP, user_id STRING, page STRING, browser STRING, "
    "country STRING, duration_ms BIGINT"
)
# A few pages, browsers and countries take most visits, as on a real blog.
_PAGES = {"/": 30, "/articles/spark": 20, "/articles/delta": 15, "/about": 5, "/contact": 2}
_BROWSERS = {"chrome": 60, "safari": 20, "firefox": 12, "edge": 8}
_COUNTRIES = {"US": 40, "DE": 15, "FR": 12, "PL": 10, "IN": 13, "BR": 10}


def generate_devices(
    output: Path, *, rows: int, invalid_ratio: float = 0.0, seed: int = 42
) -> Path:
    """Write `rows` devices as JSON lines with the seed's `type, full_name, version` schema.

    About `invalid_ratio` of them are invalid: half with a too-short `type`, half with a null
    `full_name`. The same seed gives the same file.
    """
    rng = random.Random(seed)
    output.mkdir(parents=True, exist_ok=True)
    target = output / "devices.json"
    with target.open("w") as handle:
        for i in range(rows):
            kind: str = rng.choice(_TYPES)
            name: str | None = f"{kind} model {i}"
            if rng.random() < invalid_ratio:
                if rng.random() < 0.5:
                    kind = rng.choice(_SHORT_TYPES)
                else:
                    name = None
            record = {"type": kind, "full_name": name, "version": rng.choice(_VERSIONS)}
            handle.write(json.dumps(record) + "\n")
    return target


def generate_visits(
    output: Path,
    *,
    date: str,
    rows_per_hour: int,
    skip_hours: Sequence[int] = (),
    seed: int = 42,
) -> list[Path]:
    """Write hourly partitions `output/date=D/hour=HH/` of visit events as JSON lines.

    Hours in `skip_hours` are not written (a late or failed producer). Visits are skewed
    towards a few pages, browsers and countries; durations are long-tailed.
    """
    day = datetime.fromisoformat(date).replace(tzinfo=timezone.utc)
    rng = random.Random(seed)
    written = []
    for hour in range(24):
        if hour in skip_hours:
            continue
        folder = output / f"date={date}" / f"hour={hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "part-00000.json"
        with target.open("w") as handle:
            for i in range(rows_per_hour):
                at = day + timedelta(hours=hour, seconds=rng.randrange(3600))
                record = {
                    "visit_id": f"{date}-{hour:02d}-{i}",
                    "event_time": at.isoformat().replace("+00:00", "Z"),
                    "user_id": f"user-{int(rng.paretovariate(1.2)) % 5000}",
                    "page": _weighted(rng, _PAGES),
                    "browser": _weighted(rng, _BROWSERS),
                    "country": _weighted(rng, _COUNTRIES),
                    "duration_ms": int(rng.lognormvariate(9, 1)),
                }
                handle.write(json.dumps(record) + "\n")
        written.append(target)
    return written


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
