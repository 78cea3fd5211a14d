"""`format("delta")` on a session: the `delta` Python data source, registered with the driver's
store variables.

Spark starts a data source's Python processes (its planner, its readers and writers) with the
JVM's environment plus the variables the source was registered with. A bucket's endpoint or
keys set in the driver after the JVM started (a notebook cell, a test fixture, a profile's
`[storage]` table) would not reach `spark.read.format("delta")` otherwise: the source is
registered with them, and again whenever they change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING

from spark_flow import storage
from spark_flow._connect import is_connect
from spark_flow.delta._read_spark import SESSION_TIME_ZONE
from spark_flow.delta._source_options import SESSION_TIME_ZONE_ENV

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# A digest of the store variables the source was registered with (never the variables: a
# session's conf is no place for an access key).
ENVIRONMENT_CONF = "spark.spark_flow.delta.environment"
# Registering lends `sc.environment` the variables for a moment: one thread at a time (a
# backfill's runs write in threads of one session), or one could keep another's loan.
_lending = threading.Lock()


def register(spark: SparkSession) -> None:
    """Register the `delta` data source on `spark` with this process's store variables and
    the session's time zone (a zoneless `timestampAsOf` is read in it, as delta-spark does)."""
    from pyspark.errors import AnalysisException

    from spark_flow.delta.source import DeltaDataSource

    variables = _variables(spark)
    try:
        if is_connect(spark):  # the server's Python workers have the server's environment
            spark.dataSource.register(DeltaDataSource)
            return
        # pyspark copies `sc.environment` into the source's Python function as it registers
        # it: the store variables for this source's processes, not for every UDF's.
        environment = spark.sparkContext.environment
        with _lending:
            before = dict(environment)
            environment.update(variables)
            try:
                spark.dataSource.register(DeltaDataSource)
            finally:
                environment.clear()
                environment.update(before)
    except AnalysisException as exc:
        if exc.getCondition() != "DATA_SOURCE_ALREADY_EXISTS":
            raise
        # Spark checks the name against the *active* session's registry, so a sibling session
        # (spark.newSession()) of one that registered it cannot register it itself.
        log.warning(
            "format('delta') is not available on this session: a sibling session of the same "
            "application registered it first. spark_flow.delta.read/write work regardless."
        )
    spark.conf.set(ENVIRONMENT_CONF, _digest(variables))


def follow_environment(spark: SparkSession) -> None:
    """Register the source again if the store variables or the session's time zone changed
    since it was registered."""
    if is_connect(spark):
        return
    if spark.conf.get(ENVIRONMENT_CONF, None) != _digest(_variables(spark)):
        register(spark)


def _variables(spark: SparkSession) -> dict[str, str]:
    zone = spark.conf.get(SESSION_TIME_ZONE, None)
    return {**storage.store_environment(), **({SESSION_TIME_ZONE_ENV: zone} if zone else {})}


def _digest(variables: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(variables.items())).encode()).hexdigest()[:16]
