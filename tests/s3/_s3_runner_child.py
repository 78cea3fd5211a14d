"""A driver that runs job `racer` for one date under a SingleRunner, its state from the env.

    SPARK_FLOW_STATE=s3://bucket/state python _s3_runner_child.py

Waits for `go` on stdin (racers start together). If it gets the lock, its task prints
{"ran": true, "run_id": ...} and waits for `release` on stdin; if refused, it prints
{"ran": false, "holder": {...}, "error": ...} and exits 1.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

from spark_flow.errors import ConcurrentRunError
from spark_flow.runners import RunContext, RunState, SingleRunner


def say(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def task(context: RunContext) -> dict[str, Any]:
    say({"ran": True, "run_id": context.run_id})
    sys.stdin.readline()  # "release"
    return {"rows": 1}


runner = SingleRunner("racer", state=RunState.from_profile())
sys.stdin.readline()  # "go"
try:
    runner.run(date(2024, 1, 2), task)
except ConcurrentRunError as exc:
    say({"ran": False, "holder": exc.holder, "error": str(exc)})
    raise SystemExit(1) from None
