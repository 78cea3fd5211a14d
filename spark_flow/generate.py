"""Generated datasets for demos, tests and benchmarks (`spark-flow generate ...`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

__all__ = ["DEVICE_SCHEMA", "generate_devices"]

DEVICE_SCHEMA = "type STRING, full_name STRING, version STRING"
_TYPES = ("galaxy", "iphone", "pixel", "nokia", "oneplus")
_SHORT_TYPES = ("tv", "mac", "x")  # invalid: the loader keeps length(type) > 3
_VERSIONS = ("1.0", "2.1", "3.5", "14.2")


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
