"""Publishes batch 0 of a file output on an object store, then hangs mid batch 1 to be killed.

    python _crash_file_output.py <output URI> <format> <rendezvous folder>

Batch 1 has two partitions: the first is written whole; the second waits until the first's file
is in the bucket, says so by creating `<rendezvous folder>/arrived`, and hangs there until the
test kills the process (and its JVM and Python workers) with SIGKILL: a crash with part of the
batch's files written and no manifest.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from spark_flow.outputs import output_writer
from spark_flow.session import get_session

output, output_format, rendezvous = sys.argv[1:4]
spark = get_session("crash-file-output", conf={"spark.master": "local[2]"})
writer = output_writer(output_format)
writer.write(spark.range(0, 10), output, app_id="crash", txn_version=0)
batch_folder = f"{output}/batch_id=1"


@F.udf("long")
def hold_the_second_partition(value):  # type: ignore[no-untyped-def]
    import time
    from pathlib import Path

    from pyarrow.fs import FileSelector

    from spark_flow import storage

    if value < 20:
        return value
    filesystem, location = storage.filesystem(batch_folder)
    written = FileSelector(location, allow_not_found=True)
    deadline = time.monotonic() + 240
    while not filesystem.get_file_info(written) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the bucket for the first partition's file, with a deadline
    (Path(rendezvous) / "arrived").touch()
    time.sleep(3600)  # hung mid-batch until the test kills the process
    return value


batch = spark.range(10, 30, numPartitions=2).withColumn("id", hold_the_second_partition("id"))
writer.write(batch, output, app_id="crash", txn_version=1)
raise SystemExit("the batch was published: the test should have killed this process first")
