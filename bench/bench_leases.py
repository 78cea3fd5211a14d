"""Runner lease on an object store: one acquire + release, on the local S3 server vs a local disk.

    .venv/bin/python bench/bench_leases.py [--rounds 100]

A RunLock is taken and given back --rounds times on a moto S3 server on 127.0.0.1 (a read, a
put-if-absent or conditional put, and a conditional put to release), and as many times in a
local folder (hard links), the baseline. Figures: the median and p99 of one round on each, and
S3 median / local median (reported, no target: a real store adds its network round trips).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from spark_flow.local_s3 import LocalS3
from spark_flow.runners import RunLock


def rounds(folder: str, count: int, warm_up: int) -> list[float]:
    """Seconds of each acquire + release of one lock in `folder`, after `warm_up` untimed ones."""
    seconds = []
    for n in range(warm_up + count):
        started = time.perf_counter()
        with RunLock(folder, job="bench"):
            pass
        if n >= warm_up:
            seconds.append(time.perf_counter() - started)
    return seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("bench/results/leases.json"))
    args = parser.parse_args()
    with LocalS3() as server:
        os.environ.update(server.environment())
        bucket = server.create_bucket("bench-leases")
        store = rounds(f"{bucket}/state/locks/bench/_job", args.rounds, args.warm_up)
    local = rounds(tempfile.mkdtemp(prefix="bench-leases-"), args.rounds, args.warm_up)

    figures = {
        "rounds": args.rounds,
        "s3_median_s": statistics.median(store),
        "s3_p99_s": percentile(store, 0.99),
        "local_median_s": statistics.median(local),
        "local_p99_s": percentile(local, 0.99),
        "s3_over_local": statistics.median(store) / statistics.median(local),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"lock acquire + release, {args.rounds} rounds after {args.warm_up} warm-up rounds")
    print(f"S3 server (moto)  median {figures['s3_median_s'] * 1000:.1f} ms, "
          f"p99 {figures['s3_p99_s'] * 1000:.1f} ms")  # fmt: skip
    print(f"local disk        median {figures['local_median_s'] * 1000:.2f} ms, "
          f"p99 {figures['local_p99_s'] * 1000:.2f} ms")  # fmt: skip
    print(f"S3 / local        {figures['s3_over_local']:.1f}x   (reported, no target)")


if __name__ == "__main__":
    main()
