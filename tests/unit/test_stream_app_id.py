"""Which app id `writeStream.format("delta")` commits a query's micro-batches under."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_flow.delta._stream_sink import APP_ID_PREFIX, stream_app_id
from spark_flow.errors import InvalidArgumentError

QUERY_ID = "5481a65d-28c8-4707-b98f-7ed1ea3646b1"


def test_the_app_id_is_the_query_id_its_checkpoint_keeps_as_delta_spark_has_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "metadata").write_text(f'{{"id":"{QUERY_ID}"}}\n')  # as Spark writes it

    assert stream_app_id({"checkpointLocation": str(tmp_path), "queryName": "q"}) == QUERY_ID
    assert stream_app_id({"checkpointLocation": tmp_path.as_uri()}) == QUERY_ID
    assert stream_app_id({"queryName": "q"}) == APP_ID_PREFIX + "q"


@pytest.mark.parametrize("metadata", [None, "{}", "not json"])
def test_a_checkpoint_without_the_query_id_is_refused_with_what_to_do(
    tmp_path: Path, metadata: str | None
) -> None:
    # e.g. a relative location on a Connect server, whose Python runs in another folder
    if metadata is not None:
        (tmp_path / "metadata").write_text(metadata)

    with pytest.raises(InvalidArgumentError, match="absolute checkpoint location") as caught:
        stream_app_id({"checkpointLocation": str(tmp_path)})

    assert caught.value.argument == "checkpointLocation"
    assert str(tmp_path / "metadata") in str(caught.value)
