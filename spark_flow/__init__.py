"""spark_flow: the data-flow design patterns of chapter 6 as PySpark helpers.

The foundation: `get_session` builds a session from a profile in `conf/` and picks a Delta
backend; `spark_flow.delta` reads and idempotently writes Delta tables on either backend.
"""

from __future__ import annotations

from spark_flow.delta import WriteResult, enable_delta
from spark_flow.errors import (
    ConfigError,
    InvalidArgumentError,
    NotADeltaTableError,
    SchemaMismatchError,
    SparkFlowError,
    UnknownValueError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.session import Profile, get_session, load_profile

__all__ = [
    "ConfigError",
    "InvalidArgumentError",
    "NotADeltaTableError",
    "Profile",
    "SchemaMismatchError",
    "SparkFlowError",
    "UnknownValueError",
    "UnsupportedDeltaFeatureError",
    "WriteResult",
    "enable_delta",
    "get_session",
    "load_profile",
]
