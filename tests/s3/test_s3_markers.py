"""Readiness markers in a bucket, between a producer and a consumer in different processes.

Against a real S3 server (moto, 127.0.0.1). A marker is one object written by one upload, so a
consumer polling while it is written sees no marker or the whole one, never a part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spark_flow.errors import InputNotReadyError
from spark_flow.markers import marker_path, wait_until_ready

DAY = "2024-01-02"
# Large enough that the upload takes many of the consumer's polls (and parts, for a store
# client that uploads in parts): a marker seen half-written would not parse.
PAYLOAD = 4 * 1024 * 1024

PRODUCER = """
import sys
import pyarrow as pa
from deltalake import write_deltalake
from spark_flow.markers import mark_ready
output, day, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # "go"
write_deltalake(output, pa.table({"id": [1, 2, 3]}))
mark_ready(output, run_id="producer-1", logical_date=day, row_count=3, payload="x" * size)
"""

CONSUMER = """
import json, sys
from spark_flow.markers import wait_until_ready
output, day = sys.argv[1], sys.argv[2]
print("waiting", flush=True)
marker = wait_until_ready(output, timeout=120, poke_interval=0.01, logical_date=day)
print(json.dumps({"run_id": marker.run_id, "table_version": marker.table_version,
                  "row_count": marker.row_count, "payload": len(marker.metadata["payload"])}))
"""


def start(script: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    cwd.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=cwd, env=dict(os.environ),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_consumer_process_sees_the_whole_marker_a_producer_process_wrote(
    s3_bucket: str, tmp_path: Path
) -> None:
    output = f"{s3_bucket}/devices"
    consumer = start(CONSUMER, output, DAY, cwd=tmp_path / "consumer")
    assert consumer.stdout is not None
    assert consumer.stdout.readline().strip() == "waiting"  # it polls before there is a marker

    producer = start(PRODUCER, output, DAY, str(PAYLOAD), cwd=tmp_path / "producer")
    producer.communicate("go\n", timeout=120)
    assert producer.returncode == 0
    seen, errors = consumer.communicate(timeout=120)

    assert consumer.returncode == 0, errors
    marker: dict[str, Any] = json.loads(seen)
    assert marker == {
        "run_id": "producer-1",
        "table_version": 0,
        "row_count": 3,
        "payload": PAYLOAD,
    }
    assert marker_path(output, DAY) == f"{output}/_spark_flow_ready/{DAY}.json"


def test_waiting_for_a_marker_that_never_comes_names_its_place_in_the_bucket(
    s3_bucket: str,
) -> None:
    output = f"{s3_bucket}/devices"

    with pytest.raises(InputNotReadyError) as caught:
        wait_until_ready(output, timeout=0, logical_date=DAY)

    assert f"{output}/_spark_flow_ready/{DAY}.json" in str(caught.value)
