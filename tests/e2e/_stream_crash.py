"""devices_stream_loader, killed mid micro-batch: after its raw branch committed batch 1 and
before its enriched branch wrote it, the process dies (os._exit: no cleanup, no finally).

    python _stream_crash.py <devices_stream_loader arguments>
"""

from __future__ import annotations

import os
import sys
import time

from spark_flow import delta
from spark_flow.jobs import load
from spark_flow.outputs import DeltaOutput

CRASH_BATCH = 1
job = load("devices_stream_loader")
args = job.parser().parse_args(sys.argv[1:])
write = DeltaOutput.write


def write_or_die(self, df, path, *, app_id, txn_version):  # type: ignore[no-untyped-def]
    if path == args.enriched_output and txn_version == CRASH_BATCH:
        deadline = time.monotonic() + 120
        # Batch 0 is committed to both tables before batch 1 starts: the raw table exists.
        while delta.transaction_version(args.raw_output, f"{args.app_id}.raw") != CRASH_BATCH:
            if time.monotonic() > deadline:
                raise SystemExit("the raw branch never committed the batch")
            time.sleep(0.01)
        os._exit(9)
    return write(self, df, path, app_id=app_id, txn_version=txn_version)


DeltaOutput.write = write_or_die  # type: ignore[method-assign]
raise SystemExit(job.main(sys.argv[1:]))
