"""A process that takes a RunLock when told to: `go` on stdin, then `release`.

    python _lock_child.py FOLDER [WAIT_SECONDS]

Prints one JSON line: {"acquired": true, "run_id": ...} or {"acquired": false, "holder": {...}}.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from spark_flow.errors import ConcurrentRunError
from spark_flow.runners import RunLock

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
folder = Path(sys.argv[1])
wait = float(sys.argv[2]) if len(sys.argv) > 2 else None
lock = RunLock(folder, job="racer", lease_seconds=60)
sys.stdin.readline()  # "go": racers start together
try:
    lock.acquire(wait=wait, poll=0.05)
    answer = {"acquired": True, "run_id": lock.run_id}
except ConcurrentRunError as exc:
    answer = {"acquired": False, "run_id": lock.run_id, "holder": exc.holder}
sys.stdout.write(json.dumps(answer) + "\n")
sys.stdout.flush()
if not answer["acquired"]:
    raise SystemExit(1)
sys.stdin.readline()  # "release"
lock.release()
