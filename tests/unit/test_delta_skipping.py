"""Which Spark predicates delta-rs may skip files by (no Spark): those it reads as Spark does.

The rows a skipped file held are lost in silence, so every form DataFusion reads otherwise
must be refused; the tests in tests/spark/test_delta_read_skipping.py show the rows each one
lost. Forms every engine reads alike keep skipping.
"""

from __future__ import annotations

from typing import Any

import pytest

from spark_flow.delta import _skipping


def _schema(**types: str) -> dict[str, Any]:
    fields = [{"name": n, "type": t, "nullable": True, "metadata": {}} for n, t in types.items()]
    return {"type": "struct", "fields": fields}


SCHEMA = _schema(i="integer", b="byte", l="long", f="float", d="double", s="string",
                 amt="decimal(10,2)", w="decimal(38,18)", at="timestamp", day="date")  # fmt: skip

READ_ALIKE = [
    ("i < 2", True),
    ("i > 1.0", True),
    ("l = 10L", True),
    ("f < 0.5", True),
    ("d > 1.1", True),
    ("amt >= 1.01", True),
    ("w = 200", True),
    ("s = '1.5' AND i < 2", True),
    ("s = 'a' OR amt < 1.005", False),
    ("i BETWEEN 1 AND 2", True),
    ("day > DATE '2024-01-01' AND i = 3", True),
    ("i < 1.5", False),
    ("1.5 > i", False),
    ("b <> 15e-1", False),
    ("f > 1.1", False),
    ("amt < 1.005", False),
    ("w = 1234567.891", False),
    ("w BETWEEN 0 AND 1234567.891", False),  # the bound BETWEEN's own AND keeps with `w`
    ("s = 1", False),
    ("s IN (1, 7)", False),
    ("s = 'a' 'b'", False),
    ("s = 'a\\\\b'", False),
    ("amt < 1e999999999", False),  # answered at once, without the number's billion digits
    ("f < 1e999", False),
    ("amt < 1e-999999999", False),
    ("amt = 1.50", True),
    ("amt = 0.000", True),
    ("f > '1.1'", False),
    ("amt <> '1.005'", False),
    ("i = '01' AND s = '1.5'", True),
    ("s = 'x AND 1.5' AND i = 1", True),
]


@pytest.mark.parametrize(("predicate", "alike"), READ_ALIKE, ids=[p for p, _ in READ_ALIKE])
def test_only_predicates_delta_rs_reads_as_spark_does_skip_files(
    predicate: str, alike: bool
) -> None:
    assert _skipping.read_alike(predicate, SCHEMA, "UTC") is alike


def test_a_timestamp_predicate_skips_only_in_utc() -> None:
    assert _skipping.read_alike("at >= '2024-01-31 19:00:00'", SCHEMA, "UTC")
    assert not _skipping.read_alike("at >= '2024-01-31 19:00:00'", SCHEMA, "Asia/Tokyo")
