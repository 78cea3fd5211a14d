"""The Arrow-worker file reader's JSON rules and what it ships to the workers, without Spark."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from spark_flow import storage
from spark_flow._json_read import _row

KINDS = {"type": "string", "n": "long", "x": "double", "ok": "boolean"}


@pytest.mark.parametrize(
    ("line", "row", "malformed"),
    [
        ('{"type": "phone", "n": 3, "x": 1.5, "ok": true}',
         {"type": "phone", "n": 3, "x": 1.5, "ok": True}, False),
        ('{"type": "phone", "extra": 1}', {"type": "phone"}, False),  # unknown fields dropped
        ('{"type": null}', {}, False),  # null and missing fields are null
        ('{"type": 5, "x": 2}', {"type": "5", "x": 2.0}, False),  # a string takes any token
        ('{"type": {"a":1.50}}', {"type": '{"a":1.50}'}, False),  # as written
        ('{"x": "NaN", "n": 1} trailing', {"x": float("nan"), "n": 1}, False),
        # A field that does not fit is null, the others keep their values.
        ('{"n": "3", "type": "kept"}', {"type": "kept"}, True),
        ('{"n": 1.5}', {}, True),
        ('{"n": true}', {}, True),
        ('{"n": 9223372036854775808}', {}, True),  # past a long
        ('{"ok": 1, "n": 2}', {"n": 2}, True),
        ("[1, 2]", {}, True),  # not an object
        ('{"type": "phone"', {}, True),  # cut short
        ("not json", {}, True),
    ],
)  # fmt: skip
def test_a_json_line_becomes_a_row_field_by_field_as_in_sparks_permissive_mode(
    line: str, row: dict[str, object], malformed: bool
) -> None:
    parsed, bad = _row(line, KINDS, "UTC")
    assert repr(sorted(parsed.items())) == repr(sorted(row.items()))  # repr: nan is itself
    assert bad is malformed


UTC, BERLIN = timezone.utc, ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("line", "row", "malformed"),
    [
        ('{"at": "2024-01-01T10:30:00Z"}', {"at": datetime(2024, 1, 1, 10, 30, tzinfo=UTC)},
         False),
        ('{"at": "2024-01-01T10:30:00.250+01:00"}',
         {"at": datetime(2024, 1, 1, 9, 30, 0, 250000, tzinfo=UTC)}, False),
        # No offset: a wall time in the session's zone, as Spark's JSON reader takes it.
        ('{"at": "2024-07-01 10:30:00"}', {"at": datetime(2024, 7, 1, 10, 30, tzinfo=BERLIN)},
         False),
        ('{"day": "2024-02-29"}', {"day": date(2024, 2, 29)}, False),
        ('{"day": "2024-2-9"}', {"day": date(2024, 2, 9)}, False),  # Spark's lenient dates
        ('{"at": 1704067200}', {"at": datetime(2024, 1, 1, tzinfo=UTC)}, False),  # seconds
        ('{"at": "yesterday"}', {}, True),
        ('{"day": "2023-02-29"}', {}, True),
    ],
)  # fmt: skip
def test_json_dates_and_timestamps_are_read_as_spark_reads_them(
    line: str, row: dict[str, object], malformed: bool
) -> None:
    assert _row(line, {"at": "timestamp", "day": "date"}, "Europe/Berlin") == (row, malformed)


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
