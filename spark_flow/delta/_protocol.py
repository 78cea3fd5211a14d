"""A table's protocol action against the Delta protocol and against what spark_flow handles.

Two allow-lists decide, never a deny-list, so a feature Delta adds tomorrow is refused by name
instead of read or written wrong:

- `READER_FEATURES`: what the delta-rs reader handles. A table is read only if its
  `minReaderVersion` is 1, 2 or 3 and every feature it needs is in the list; reader version 2
  needs column mapping (the protocol's legacy form of that feature).
- `WRITER_FEATURES`: what our delta-rs *write* path honours. Our commit adds files Spark wrote;
  it evaluates no constraint, generates no value and assigns no row id; it stores columns
  under their physical names where the table maps them (`_mapping`). Features in
  `WRITER_FEATURES_WHEN_UNUSED` are honoured only while the table does not use them (a CHECK
  constraint defined, a generated column ...): Delta lets a table support a feature it does
  not use. Every other one is refused with its reason from `WRITER_REFUSALS`: what the
  protocol asks of a writer that adds files, or deltalake's own commit refusing the feature.

Facts come from deltalake's `ProtocolVersions` or, when deltalake cannot open a log, from the
raw action (`from_action`), so both paths decide alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

READER_FEATURES = frozenset(
    {
        "checkpointProtection",
        "columnMapping",
        "deletionVectors",
        "timestampNtz",
        "typeWidening",
        "typeWidening-preview",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "variantType",
        "variantType-preview",
    }
)
"""Reader features the delta-rs reader handles. Refused among the protocol's others:
`catalogManaged` (commits live in a catalog, not only in `_delta_log`), variant shredding
(values split over several Parquet columns), collations (string comparison changes)."""

WRITER_FEATURES = frozenset(
    {
        "appendOnly",  # an overwrite is refused before any Spark job (and by deltalake's commit)
        "changeDataFeed",  # appends and overwrites change no row in place: no CDC file needed
        "columnMapping",  # files under physical names and field ids, the log keyed by them
        "deletionVectors",  # we add files without deletion vectors
        "timestampNtz",
        # deltalake's post-commit checkpoint is a V2-spec one (it holds a checkpointMetadata
        # action) under a classic name, a combination the protocol allows; UUID-named ones
        # other writers left are read as they are.
        "v2Checkpoint",
        "variantType",
        "variantType-preview",
    }
)
"""Writer features the delta-rs write path honours on every table that lists them."""

_DELTALAKE_REFUSES = "deltalake's commit refuses tables listing it"
WRITER_REFUSALS: Mapping[str, str] = {
    "allowColumnDefaults": "rows lacking a value must take the column's default",
    "catalogManaged": "commits go through the table's catalog, not only its _delta_log",
    "checkConstraints": "every row must be checked against the table's CHECK constraints",
    "checkpointProtection": f"{_DELTALAKE_REFUSES} (it limits which old commits and "
    "checkpoints a writer may clean up)",
    "clustering": f"its clustering columns live in a domainMetadata action, and "
    f"{_DELTALAKE_REFUSES}",
    "domainMetadata": _DELTALAKE_REFUSES,
    "generatedColumns": "every row's generated columns must equal their expressions",
    "icebergCompatV1": "Iceberg metadata must be kept in step with every commit",
    "icebergCompatV2": "Iceberg metadata must be kept in step with every commit",
    "identityColumns": "identity values must be generated above the column's high water mark",
    "inCommitTimestamp": "every commit must start with a commitInfo carrying a strictly "
    "increasing inCommitTimestamp, which deltalake's commit does not write",
    "invariants": "every row must be checked against the columns' invariants",
    "rowTracking": "added files must carry baseRowId and defaultRowCommitVersion and the "
    "delta.rowTracking domain's high water mark must rise, which deltalake's commit does not do",
    "typeWidening": _DELTALAKE_REFUSES,
    "typeWidening-preview": _DELTALAKE_REFUSES,
    "vacuumProtocolCheck": f"{_DELTALAKE_REFUSES}, although a commit needs nothing for it",
}
"""Why a writer feature outside `WRITER_FEATURES` is refused: what the protocol asks of a
writer that adds files, or what deltalake 1.6's commit does with a table that lists it."""


def refusal(feature: str) -> str:
    """`feature` (an entry of `unwritable`) and why our writes refuse it, for a message."""
    return f"{feature} ({WRITER_REFUSALS.get(feature, 'unknown to this backend')})"


def _field_metadata(schema: Any) -> Iterator[Mapping[str, Any]]:
    """The metadata of every field of a deltalake schema, nested ones included."""
    for field in schema.fields:
        yield field.metadata
        nested = field.type
        while nested is not None:
            if hasattr(nested, "fields"):
                yield from _field_metadata(nested)
                break
            nested = getattr(nested, "element_type", None) or getattr(nested, "value_type", None)


def _any_field_has(key: str) -> Callable[[Mapping[str, str], Any], bool]:
    return lambda _, schema: any(key in m for m in _field_metadata(schema))


WRITER_FEATURES_WHEN_UNUSED: Mapping[str, Callable[[Mapping[str, str], Any], bool]] = {
    "invariants": _any_field_has("delta.invariants"),
    "checkConstraints": lambda config, _: any(k.startswith("delta.constraints.") for k in config),
    "generatedColumns": _any_field_has("delta.generationExpression"),
}
"""Writer features honoured while unused, each with the test of whether `(configuration,
schema)` uses it: our files carry no generated value, and nothing checks their rows against a
constraint or invariant."""

# The features a legacy protocol version implies (Delta's "Writer/Reader Version Requirements").
_LEGACY_READER = {1: (), 2: ("columnMapping",)}
_LEGACY_WRITER = {
    1: (),
    2: ("appendOnly", "invariants"),
    3: ("appendOnly", "invariants", "checkConstraints"),
    4: ("appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns"),
    5: ("appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns",
        "columnMapping"),
    6: ("appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns",
        "columnMapping", "identityColumns"),
}  # fmt: skip


@dataclass(frozen=True)
class Protocol:
    """A protocol action: versions, and the feature lists (None where the action has none)."""

    min_reader_version: int
    min_writer_version: int
    reader_features: tuple[str, ...] | None = None
    writer_features: tuple[str, ...] | None = None

    @classmethod
    def of(cls, versions: Any) -> Protocol:
        """From deltalake's `ProtocolVersions` (`DeltaTable.protocol()`).

        deltalake gives an empty feature list as None; at reader 3 / writer 7 that is the
        empty list the log holds (a legal protocol), not a missing one.
        """
        reader, writer = versions.min_reader_version, versions.min_writer_version
        readers, writers = versions.reader_features, versions.writer_features
        return cls(
            reader,
            writer,
            tuple(readers or ()) if readers is not None or reader == 3 else None,
            tuple(writers or ()) if writers is not None or writer == 7 else None,
        )

    @classmethod
    def from_action(cls, action: Mapping[str, Any]) -> Protocol:
        """From the `protocol` object of a commit line; malformed fields read as invalid."""

        def features(key: str) -> tuple[str, ...] | None:
            raw = action.get(key)
            return None if raw is None else tuple(str(f) for f in raw)

        reader, writer = action.get("minReaderVersion"), action.get("minWriterVersion")
        return cls(
            reader if isinstance(reader, int) else -1,
            writer if isinstance(writer, int) else -1,
            features("readerFeatures"),
            features("writerFeatures"),
        )

    def defect(self) -> str | None:
        """How this action breaks the Delta protocol, or None when it keeps it."""
        reader, writer = self.min_reader_version, self.min_writer_version
        if reader < 1 or writer < 1:
            return (
                f"its protocol action has minReaderVersion={reader} and minWriterVersion="
                f"{writer}, where both must be integers of at least 1"
            )
        if (reader == 3) != (self.reader_features is not None):
            listed = "lists no readerFeatures" if reader == 3 else "lists readerFeatures"
            return f"its protocol action {listed} with minReaderVersion={reader}; only 3 has them"
        if (writer == 7) != (self.writer_features is not None):
            listed = "lists no writerFeatures" if writer == 7 else "lists writerFeatures"
            return f"its protocol action {listed} with minWriterVersion={writer}; only 7 has them"
        if reader == 3 and writer != 7:
            return f"its protocol action has minReaderVersion=3 but minWriterVersion={writer}"
        unlisted = sorted(set(self.reader_features or ()) - set(self.writer_features or ()))
        if unlisted:
            return f"its protocol action lists reader features {unlisted} not in writerFeatures"
        return None

    def reader_needs(self) -> tuple[str, ...]:
        """The reader features this protocol requires, the legacy versions' included."""
        if self.reader_features is not None:
            return self.reader_features
        return _LEGACY_READER.get(self.min_reader_version, ())

    def writer_needs(self) -> tuple[str, ...]:
        """The writer features this protocol requires, the legacy versions' included."""
        if self.writer_features is not None:
            return self.writer_features
        return _LEGACY_WRITER.get(self.min_writer_version, ())


def unreadable(protocol: Protocol) -> list[str]:
    """What of `protocol` the reader does not handle: features, or a reader version; [] if none."""
    if protocol.min_reader_version > 3:
        return [f"minReaderVersion={protocol.min_reader_version}"]
    return sorted(set(protocol.reader_needs()) - READER_FEATURES)


def unwritable(protocol: Protocol, configuration: Mapping[str, str], schema: Any) -> list[str]:
    """What of `protocol` (and the table's use of it) our writes do not honour; [] if none."""
    if protocol.min_writer_version > 7:
        return [f"minWriterVersion={protocol.min_writer_version}"]
    refused = []
    for feature in sorted(set(protocol.writer_needs())):
        if feature in WRITER_FEATURES:
            continue
        in_use = WRITER_FEATURES_WHEN_UNUSED.get(feature)
        if in_use is None or in_use(configuration, schema):
            refused.append(feature)
    return refused
