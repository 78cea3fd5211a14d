"""Modules stay small enough to read in one sitting; a longer class says why it is long."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "spark_flow").rglob("*.py"), *(ROOT / "jobs").glob("*.py")])
MODULE_LINES = 450
CLASS_LINES = 150


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_stays_under_the_house_length(source: Path) -> None:
    assert len(source.read_text().splitlines()) <= MODULE_LINES


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_class_says_in_its_docstring_why(source: Path) -> None:
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            if length > CLASS_LINES:
                why = (ast.get_docstring(node) or "").lower()
                assert "longer" in why or "length" in why, f"{node.name}: {length} lines"
