"""Shared by the streaming tests: devices files landed in order, a stream over them, a writer
that fails once on one micro-batch.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark_flow.delta import WriteResult
from spark_flow.generate import DEVICE_SCHEMA, generate_devices
from spark_flow.outputs import MicroBatchWriter, OutputWriter


@dataclass
class FailsOnce:
    """A writer that fails on one txn version the first time: before writing, or right after."""

    inner: OutputWriter
    txn_version: int
    after_writing: bool = False
    failures: list[int] = field(default_factory=list)

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        return self.inner.written(path, app_id=app_id, txn_version=txn_version)  # type: ignore[attr-defined,no-any-return]

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        if txn_version == self.txn_version and not self.failures and not self.after_writing:
            self.failures.append(txn_version)
            raise RuntimeError("disk full")
        result = self.inner.write(df, path, app_id=app_id, txn_version=txn_version)
        if txn_version == self.txn_version and not self.failures:
            self.failures.append(txn_version)
            raise RuntimeError("the driver died after the commit")
        return result


def land_files(folder: Path, sizes: list[int]) -> Counter[tuple[Any, ...]]:
    """Write one devices file per size into `folder`; the records they hold, counted.

    The files get modification times a second apart, in order: the file source takes the
    oldest first, and files landed within one millisecond would come in any order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    records: Counter[tuple[Any, ...]] = Counter()
    landed = time.time() - len(sizes)
    for n, rows in enumerate(sizes):
        made = generate_devices(folder.parent / f"made-{folder.name}-{n}", rows=rows, seed=n)
        target = folder / f"devices-{n:03d}.json"
        shutil.move(made, target)
        os.utime(target, (landed + n, landed + n))
        for line in target.read_text().splitlines():
            record = json.loads(line)
            records[(record["type"], record["full_name"], record["version"])] += 1
    return records


def stream(spark: SparkSession, source: Path, sink: MicroBatchWriter, checkpoint: Path) -> None:
    """Run a file-source stream of `source` through `sink` until it has read every file."""
    query = (
        spark.readStream.schema(DEVICE_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
