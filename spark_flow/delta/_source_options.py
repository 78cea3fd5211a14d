"""What the `delta` data source makes of the options code written for delta-spark passes it.

Code moved from the connector keeps its options; each one either means here what it means
there, or is refused by name. An option ignored in silence would read the wrong version
(`timestampAsOf`), the table instead of its changes (`readChangeFeed`) or replace a whole
table where one partition was meant (`replaceWhere`). Spark hands data sources their options
case-insensitively.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from spark_flow import storage
from spark_flow.delta import _time_travel
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError

PARTITION_BY_OPTION = "spark_flow.partitionBy"
"""`spark_flow.delta.write`'s partition columns (a JSON list), where it writes through this
source: Spark never passes `DataFrameWriter.partitionBy` to a Python data source."""
REPLACE_WHERE_OPTION = "spark_flow.replaceWhere"
"""`spark_flow.delta.write`'s `replace_where` (a JSON object), written through this source."""
PARTITION_OVERWRITE_OPTION = "partitionOverwriteMode"
"""`dynamic`: an overwrite replaces the partitions the data has rows in (Spark's option)."""
TIME_ZONE_OPTION = "spark_flow.timeZone"
"""The session time zone a zoneless `timestampAsOf` or TIMESTAMP `replaceWhere` value is read
in (set by `delta.read` and `delta.write` where they go through this source)."""
SESSION_TIME_ZONE_ENV = "SPARK_FLOW_SESSION_TIME_ZONE"
"""The session's time zone when the source was registered, for a `format("delta")` read of the
user's own, which no option tells it (Spark gives Python data sources no session settings)."""
_ARTIFACT_UUID = "SPARK_JOB_ARTIFACT_UUID"
_CHANGE_FEED = ("readChangeFeed", "readChangeData")
_CHANGE_RANGE = ("startingVersion", "startingTimestamp", "endingVersion", "endingTimestamp")
# replaceWhere as this source can apply it: partition columns equal to literals, ANDed.
_NAME = r"(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`)"
_VALUE = r"(?:'(?:[^'\\]|''|\\.)*'|-?\d+(?:\.\d+)?|true|false)"
_TERM = re.compile(
    rf"\s*({_NAME})\s*=\s*(?:DATE\s*|TIMESTAMP\s*)?({_VALUE})\s*(?:AND\b|$)", re.IGNORECASE
)


def path_of(options: Any) -> str:
    """The table location, refused where it could not mean what its writer meant.

    Raises:
        InvalidArgumentError: no location, or a relative one on a Spark Connect server, whose
            Python processes run in a folder of the session's own (deleted with the session):
            a table written there would be lost, and one read there is never the user's.
    """
    path = options.get("path")
    if not path:
        raise InvalidArgumentError(
            "path",
            "format('delta') got no table location (Spark passes none to a Python data source "
            "from a catalog table created USING delta)",
            "Call .load(path) / .save(path), or spark_flow.delta.read / write.",
        )
    path = str(path)
    relative = storage.is_local(path) and not path.startswith("file:") and not os.path.isabs(path)
    if relative and _in_session_folder():
        raise InvalidArgumentError(
            "path",
            f"{path!r} is relative, and the server resolves it in a folder of the Spark Connect "
            "session's own, deleted with the session",
            "Pass an absolute path or a URI; spark_flow.delta.read and write make a local path "
            "absolute in the client.",
        )
    return path


def _in_session_folder() -> bool:
    """True in a Python process Spark runs for a Spark Connect session: in the folder of the
    session's artifacts, named by the uuid Spark sets in SPARK_JOB_ARTIFACT_UUID."""
    session = os.environ.get(_ARTIFACT_UUID)
    return bool(session) and os.path.basename(os.getcwd()) == session


def int_option(options: Any, name: str) -> int | None:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgumentError(
            name, f"expected an integer, got {raw!r}", f"Pass .option('{name}', <number>)."
        ) from None


def json_option(options: Any, name: str, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, kind):
        raise InvalidArgumentError(
            name,
            f"expected a JSON {kind.__name__}, got {raw!r}",
            "Write through spark_flow.delta.write(partition_by=..., replace_where=...).",
        )
    return value


def flag(options: Any, name: str) -> bool:
    """A boolean option, false unless set to `true` (any case)."""
    return str(options.get(name, "false")).strip().lower() == "true"


def read_version(options: Any) -> int | None:
    """The version a read asks for: `versionAsOf`, `timestampAsOf` resolved, or None (latest).

    Raises:
        InvalidArgumentError: both options, or a timestamp outside the table's commits.
        UnsupportedDeltaFeatureError: a change data feed read, which this source cannot do.
    """
    for name in _CHANGE_FEED:
        if flag(options, name):
            raise UnsupportedDeltaFeatureError(
                f"change data feed reads (option {name!r})",
                "Read them through the delta-spark connector (the jvm backend).",
            )
    ranged = [name for name in _CHANGE_RANGE if options.get(name) is not None]
    if ranged:
        raise UnsupportedDeltaFeatureError(
            f"reads of a range of versions (option {ranged[0]!r})",
            "Read one version with versionAsOf or timestampAsOf, or use the jvm backend.",
        )
    version = int_option(options, "versionAsOf")
    stamp = options.get("timestampAsOf")
    if stamp is None:
        return version
    if version is not None:
        raise InvalidArgumentError(
            "timestampAsOf",
            f"a read is at one point in time, got versionAsOf={version} too",
            "Pass either versionAsOf or timestampAsOf.",
        )
    when = _time_travel.parse(str(stamp), time_zone=session_time_zone(options))
    return _time_travel.version_at(path_of(options), when)


def session_time_zone(options: Any) -> str | None:
    """The session time zone zoneless timestamps are read in: the option `spark_flow.delta`
    passes, else the one the source was registered with (None: this process's zone)."""
    return options.get(TIME_ZONE_OPTION) or os.environ.get(SESSION_TIME_ZONE_ENV)


def dynamic_partitions(options: Any) -> bool:
    """Whether the write asks for Delta's dynamic partition overwrite.

    Raises:
        InvalidArgumentError: a mode other than `static` or `dynamic`.
    """
    mode = str(options.get(PARTITION_OVERWRITE_OPTION, "static")).strip().lower()
    if mode not in {"static", "dynamic"}:
        raise InvalidArgumentError(
            PARTITION_OVERWRITE_OPTION,
            f"expected 'static' or 'dynamic', got {mode!r}",
            "Pass .option('partitionOverwriteMode', 'dynamic') to replace the data's partitions.",
        )
    return mode == "dynamic"


def refuse_unhonoured_writes(options: Any) -> None:
    """Raise UnsupportedDeltaFeatureError for a write option this source cannot honour:
    `dataChange=false`."""
    if str(options.get("dataChange", "true")).strip().lower() == "false":
        raise UnsupportedDeltaFeatureError(
            "writes marked dataChange=false",
            "Compact a table with spark_flow.delta.optimize, which commits that way.",
        )


def replace_where(options: Any, *, overwrite: bool) -> tuple[tuple[str, str], ...] | None:
    """The partitions an overwrite replaces: `replaceWhere` or the internal JSON option.

    Raises:
        InvalidArgumentError: `replaceWhere` with an append.
        UnsupportedDeltaFeatureError: a predicate other than partition values ANDed.
    """
    internal = json_option(options, REPLACE_WHERE_OPTION, dict)
    if internal is not None:
        return tuple((column, str(value)) for column, value in internal.items())
    predicate = options.get("replaceWhere")
    if predicate is None:
        return None
    if not overwrite:
        raise InvalidArgumentError(
            "replaceWhere",
            "it replaces the rows it matches, which only an overwrite does, not an append",
            "Write with .mode('overwrite'), or drop the option to append.",
        )
    return _partition_values(str(predicate))


def _partition_values(predicate: str) -> tuple[tuple[str, str], ...]:
    """`col = 'v' AND other = 3` as ((col, v), (other, 3)); refused when it is anything else."""
    terms: list[tuple[str, str]] = []
    at = 0
    while at < len(predicate):
        term = _TERM.match(predicate, at)
        if term is None or term.end() == at:
            break
        name, value = term.groups()
        terms.append((_unquoted_name(name), _unquoted_value(value)))
        at = term.end()
    if not terms or at < len(predicate) or predicate.rstrip().upper().endswith("AND"):
        raise UnsupportedDeltaFeatureError(
            f"replaceWhere {predicate!r}",
            "On this backend replaceWhere names partitions: partition columns equal to "
            "values, joined by AND (date = '2024-01-31' AND region = 'eu'). Use the jvm "
            "backend for other predicates.",
        )
    return tuple(terms)


def _unquoted_name(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _unquoted_value(value: str) -> str:
    if not value.startswith("'"):
        return value.lower() if value.lower() in {"true", "false"} else value
    inner = value[1:-1].replace("''", "'")
    return re.sub(r"\\(.)", r"\1", inner)
