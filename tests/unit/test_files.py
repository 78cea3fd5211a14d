"""The Arrow-worker file reader's JSON rules and what it ships to the workers, without Spark."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from spark_flow import storage
from spark_flow.files import _json_row

KINDS = {"type": "string", "n": "long", "x": "double", "ok": "boolean"}


@pytest.mark.parametrize(
    ("line", "row"),
    [
        ('{"type": "phone", "n": 3, "x": 1.5, "ok": true}',
         {"type": "phone", "n": 3, "x": 1.5, "ok": True}),
        ('{"type": "phone", "extra": 1}', {"type": "phone"}),  # unknown fields are dropped
        ('{"type": null}', {}),  # null and missing fields are null
        ('{"type": 5, "x": 2}', {"type": "5", "x": 2}),  # a string column takes any token's text
        ('{"type": {"a": 1}}', {"type": '{"a": 1}'}),
        ('{"n": "3"}', None),  # a string where a number belongs: the line is malformed
        ('{"n": 1.5}', None),
        ('{"n": true}', None),
        ('{"ok": 1}', None),
        ("[1, 2]", None),  # not an object
        ('{"type": "phone"', None),  # cut short
        ("not json", None),
    ],
)  # fmt: skip
def test_a_json_line_becomes_a_row_or_is_malformed_as_in_sparks_permissive_mode(
    line: str, row: dict[str, object] | None
) -> None:
    assert _json_row(line, KINDS, "UTC") == row


UTC, BERLIN = timezone.utc, ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("line", "row"),
    [
        ('{"at": "2024-01-01T10:30:00Z"}', {"at": datetime(2024, 1, 1, 10, 30, tzinfo=UTC)}),
        ('{"at": "2024-01-01T10:30:00.250+01:00"}',
         {"at": datetime(2024, 1, 1, 9, 30, 0, 250000, tzinfo=UTC)}),
        # No offset: a wall time in the session's zone, as Spark's JSON reader takes it.
        ('{"at": "2024-07-01 10:30:00"}', {"at": datetime(2024, 7, 1, 10, 30, tzinfo=BERLIN)}),
        ('{"day": "2024-02-29"}', {"day": date(2024, 2, 29)}),
        ('{"at": "yesterday"}', None),
        ('{"at": 1704067200}', None),
        ('{"day": "2023-02-29"}', None),
    ],
)  # fmt: skip
def test_json_dates_and_timestamps_are_iso_text_in_the_sessions_zone(
    line: str, row: dict[str, object] | None
) -> None:
    assert _json_row(line, {"at": "timestamp", "day": "date"}, "Europe/Berlin") == row


def test_workers_get_the_drivers_aws_keys_with_the_filesystem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python workers have the environment the JVM started with, not keys set since.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    store, _ = storage.filesystem("s3://bucket/folder")
    shipped = pickle.loads(pickle.dumps(store))

    options = shipped.__reduce__()[1][0]
    assert (options["access_key"], options["secret_key"]) == ("key", "secret")
    assert options["region"] == "eu-west-1"
    assert options["endpoint_override"] == "http://127.0.0.1:9"
