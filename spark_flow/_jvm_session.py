"""A session for the jvm Delta backend whose JARs Spark fetches from Maven (`packages = true`).

A profile's `[delta] backend = "jvm"` with `packages = true` builds the session through
delta-spark's `configure_spark_with_delta_pip`, which adds the delta-spark build matching the
installed pip package to `spark.jars.packages`. Spark's Ivy then fetches it when the JVM starts;
where Maven (or the `spark.jars.repositories` mirror) is out of reach the JVM exits before Python
hears from it, and pyspark only says `JAVA_GATEWAY_EXITED`: this module says why.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from spark_flow.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

# What the connector needs besides its JARs: Delta's SQL extension and catalog.
DELTA_SESSION_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def start_session(builder: SparkSession.Builder, *, packages: bool, source: Path) -> SparkSession:
    """`builder.getOrCreate()`, with delta-spark's JARs from Maven when `packages` says so.

    Raises:
        MissingDependencyError: `packages` without the delta-spark pip package.
        ConfigError: Spark could not start, e.g. Maven was out of reach for the JARs.
    """
    if not packages:
        return builder.getOrCreate()
    try:
        from delta import configure_spark_with_delta_pip
    except ImportError as exc:
        raise MissingDependencyError(
            f"{source}: [delta] packages = true", "delta-spark", "jvm"
        ) from exc
    for key, value in DELTA_SESSION_CONF.items():
        builder = builder.config(key, value)
    builder = configure_spark_with_delta_pip(builder)
    log.info("delta-spark JARs from spark.jars.packages (profile %s)", source)
    try:
        return builder.getOrCreate()
    except PySparkRuntimeError as exc:
        if exc.getCondition() != "JAVA_GATEWAY_EXITED":
            raise
        raise ConfigError(
            str(source),
            "expected Spark to fetch the delta-spark JARs ([delta] packages = true) from Maven "
            "when it started, but the JVM exited: Ivy's 'unresolved dependency' above says which",
            "Reach Maven Central (or name a mirror in spark.jars.repositories), put the JARs on "
            'spark.jars yourself, or use [delta] backend = "delta-rs", which needs no JARs.',
        ) from exc
