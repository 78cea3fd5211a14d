"""The input schemas of the bundled jobs: the contract their producers write to.

The jobs read their inputs with these schemas (explicit, so a malformed file is not inferred
into a different table). `spark_flow.generate` writes data to this contract for demos, tests
and benchmarks; it keeps its own copy because the library never imports `jobs/`, and
`tests/spark/test_generated_data.py` checks that what it writes parses under these schemas
with every field filled, so the two cannot drift apart.
"""

from __future__ import annotations

__all__ = ["DEVICE_SCHEMA", "VISIT_SCHEMA"]

# devices JSON lines, as in the chapter's examples
DEVICE_SCHEMA = "type STRING, full_name STRING, version STRING"
# hourly visit partitions date=D/hour=HH/ of a blog's page views
VISIT_SCHEMA = (
    "visit_id STRING, event_time TIMESTAMP, user_id STRING, page STRING, browser STRING, "
    "country STRING, duration_ms BIGINT"
)
