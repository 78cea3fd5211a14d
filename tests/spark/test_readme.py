"""Every Python example in README.md runs, so the README cannot drift from the code.

The examples run in README order, with `spark` (the shared test session), in one working
folder that holds what the README's shell examples would have made: generated devices in
`data/devices` and two days of hourly visits in `data/visits`. A block may use what an earlier
block of the same `##` section defined, as a reader following the section does. Spark resolves
relative paths against its JVM's folder, not Python's, so the README's `"data/..."` paths are
made absolute under the working folder before a block runs. A block that
writes to PostgreSQL gets the plugin's test server; a block that defines a pytest test
(`def test_...`) has it called with the fixtures it names.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from spark_flow.generate import generate_devices, generate_visits

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)


def readme_examples() -> list[tuple[str, int, str]]:
    """(section heading, line number, code) of every ```python block, in README order."""
    text = README.read_text()
    headings = [(m.start(), m.group(1)) for m in _HEADING.finditer(text)]
    examples = []
    for match in _BLOCK.finditer(text):
        section = next((h for at, h in reversed(headings) if at < match.start()), "top")
        line = text.count("\n", 0, match.start()) + 2
        examples.append((section, line, match.group(1)))
    return examples


EXAMPLES = readme_examples()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    generate_devices(folder / "data" / "devices", rows=200, invalid_ratio=0.1, seed=7)
    for day in ("2024-01-01", "2024-01-02"):
        generate_visits(folder / "data" / "visits", date=day, rows_per_hour=5, skip_hours=(3,))
    return folder


@pytest.fixture(scope="module")
def namespaces() -> dict[str, dict[str, Any]]:
    """One namespace per README section, shared by that section's blocks."""
    return {}


@pytest.fixture
def in_workdir(
    spark: SparkSession, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Run in the README's working folder; confs an example sets are undone afterwards."""
    monkeypatch.chdir(workdir)
    before = dict(spark.conf.getAll)
    yield
    for key, value in spark.conf.getAll.items():
        if key not in before:
            spark.conf.unset(key)
        elif before[key] != value:
            spark.conf.set(key, before[key])


def test_the_readme_has_python_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(
    ("section", "line", "code"), EXAMPLES, ids=[f"L{line}" for _, line, _ in EXAMPLES]
)
@pytest.mark.usefixtures("in_workdir")
def test_readme_example_runs(
    request: pytest.FixtureRequest,
    namespaces: dict[str, dict[str, Any]],
    section: str,
    line: int,
    code: str,
) -> None:
    spark = request.getfixturevalue("spark")
    if "postgres" in code:
        request.getfixturevalue("postgres")
    namespace = namespaces.setdefault(section, {"spark": spark, "__name__": "readme_example"})
    before = set(namespace)
    code = code.replace('"data/', f'"{Path.cwd()}/data/')
    exec(compile(code, f"{README}:{line}", "exec"), namespace)
    for name in sorted(set(namespace) - before):
        if name.startswith("test_") and callable(namespace[name]):
            test = namespace[name]
            wanted = inspect.signature(test).parameters
            test(**{fixture: _fixture(request, fixture) for fixture in wanted})


def _fixture(request: pytest.FixtureRequest, name: str) -> Any:
    """A fixture for a README test function; `tmp_delta_path` fresh for each such call."""
    if name == "tmp_delta_path":
        return str(request.getfixturevalue("tmp_path") / f"table-{uuid.uuid4().hex[:8]}")
    return request.getfixturevalue(name)
