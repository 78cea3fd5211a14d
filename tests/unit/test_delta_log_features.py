"""Which tables the delta-rs backend may write to: an allow-list of writer features.

Our commit adds the files Spark wrote, as they are. A table whose writer features ask for more
(constraints checked, values generated, row ids assigned ...) is refused before any Spark job,
and nothing is written. Planning a write needs no Spark session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _delta_logs as logs
import pytest
from deltalake import DeltaTable
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_flow import storage
from spark_flow.delta import rs
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import (
    InvalidArgumentError,
    InvalidDeltaLogError,
    UnsupportedDeltaFeatureError,
)

SCHEMA = StructType([StructField("id", LongType()), StructField("day", StringType())])
FEATURES_7 = {"minReaderVersion": 1, "minWriterVersion": 7}


@pytest.fixture
def good(tmp_path: Path) -> str:
    return logs.table(tmp_path / "devices", commits=1)


def plan(path: str, mode: str = "append") -> Any:
    return rs.plan_write(WriteRequest(path, mode=mode), SCHEMA)  # type: ignore[arg-type]


def assert_untouched(path: str) -> None:
    assert DeltaTable(path).version() == 0
    assert not (Path(path) / storage.STAGING_DIR).exists()


@pytest.mark.parametrize(
    ("protocol", "configuration", "field_metadata", "refused"),
    [
        ({"minReaderVersion": 1, "minWriterVersion": 3}, {"delta.constraints.pos": "id > 0"}, {},
         "checkConstraints"),
        ({"minReaderVersion": 1, "minWriterVersion": 2}, {},
         {"id": {"delta.invariants": json.dumps({"expression": {"expression": "id > 0"}})}},
         "invariants"),
        ({"minReaderVersion": 1, "minWriterVersion": 4}, {},
         {"id": {"delta.generationExpression": "1"}}, "generatedColumns"),
        ({"minReaderVersion": 1, "minWriterVersion": 6}, {}, {}, "identityColumns"),
        ({**FEATURES_7, "writerFeatures": ["rowTracking", "domainMetadata"]},
         {"delta.enableRowTracking": "true"}, {}, "domainMetadata, rowTracking"),
        ({**FEATURES_7, "writerFeatures": ["icebergCompatV2"]}, {}, {}, "icebergCompatV2"),
        ({**FEATURES_7, "writerFeatures": ["inCommitTimestamp"]}, {}, {}, "inCommitTimestamp"),
        ({**FEATURES_7, "writerFeatures": ["clustering"]}, {}, {}, "clustering"),
        ({**FEATURES_7, "writerFeatures": ["checkConstraints"]},
         {"delta.constraints.pos": "id > 0"}, {}, "checkConstraints"),
        ({"minReaderVersion": 1, "minWriterVersion": 8}, {}, {}, "minWriterVersion=8"),
    ],
    ids=["check", "invariant", "generated", "identity", "row-tracking", "iceberg", "ict",
         "clustering", "check-7", "writer-8"],
)  # fmt: skip
def test_a_table_needing_what_our_commit_does_not_honour_is_refused_before_spark(
    good: str,
    protocol: dict[str, Any],
    configuration: dict[str, str],
    field_metadata: dict[str, Any],
    refused: str,
) -> None:
    logs.set_protocol(good, protocol)
    logs.set_metadata(good, configuration=configuration, field_metadata=field_metadata)

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        plan(good)

    assert f"it needs {refused}, which" in caught.value.feature
    assert repr(good) in caught.value.feature
    assert "backend 'jvm'" in caught.value.fix
    assert_untouched(good)


def test_a_mapped_table_is_planned_with_its_physical_names_on_both_protocols(
    tmp_path: Path,
) -> None:
    for legacy in (True, False):
        path = logs.column_mapped(tmp_path / f"mapped-{legacy}", legacy=legacy)

        mapping = plan(path).mapping

        assert mapping.mode == "name"
        assert mapping.physical.fieldNames() == ["id", "day"]
        assert [f.metadata["parquet.field.id"] for f in mapping.physical.fields] == [1, 2]


def test_a_mapping_mode_without_the_protocol_feature_stores_logical_names(good: str) -> None:
    # deltalake writes the property on tables whose protocol lacks the feature; readers then
    # read logical names, so the files must hold them.
    logs.set_metadata(good, configuration={"delta.columnMapping.mode": "name"})

    assert plan(good).mapping is None


@pytest.mark.parametrize(
    ("protocol", "configuration"),
    [
        ({"minReaderVersion": 1, "minWriterVersion": 4}, {"delta.enableChangeDataFeed": "true"}),
        ({"minReaderVersion": 1, "minWriterVersion": 5}, {}),  # columnMapping supported, unused
        ({**FEATURES_7, "writerFeatures": ["checkConstraints", "invariants", "generatedColumns",
                                           "appendOnly", "changeDataFeed"]}, {}),
        ({"minReaderVersion": 3, "minWriterVersion": 7,
          "readerFeatures": ["deletionVectors", "timestampNtz"],
          "writerFeatures": ["deletionVectors", "timestampNtz"]}, {}),
        ({"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["v2Checkpoint"],
          "writerFeatures": ["v2Checkpoint"]}, {"delta.checkpointPolicy": "v2"}),
    ],
    ids=["cdf", "writer-5-unmapped", "supported-unused", "dv-ntz", "v2-checkpoint"],
)  # fmt: skip
def test_features_our_commit_honours_or_the_table_does_not_use_are_written(
    good: str, protocol: dict[str, Any], configuration: dict[str, str]
) -> None:
    logs.set_protocol(good, protocol)
    logs.set_metadata(good, configuration=configuration)

    assert isinstance(plan(good, "overwrite"), rs.WritePlan)


def test_an_append_only_table_takes_appends_and_refuses_overwrites(good: str) -> None:
    logs.set_metadata(good, configuration={"delta.appendOnly": "true"})

    assert isinstance(plan(good), rs.WritePlan)
    with pytest.raises(InvalidArgumentError) as caught:
        plan(good, "overwrite")

    assert caught.value.argument == "mode"
    assert "append-only (delta.appendOnly=true)" in caught.value.problem
    assert_untouched(good)


def test_a_write_to_a_broken_log_is_refused_and_writes_nothing(good: str) -> None:
    logs.table(Path(good), commits=2)
    logs.commit_file(good, 1).unlink()

    with pytest.raises(InvalidDeltaLogError) as caught:
        plan(good)

    assert caught.value.version == 1
    assert not (Path(good) / storage.STAGING_DIR).exists()
    assert not logs.commit_file(good, 3).exists()
