"""The package's boundaries, read from the source: who may import what.

- Delta: everything outside `spark_flow/delta/` goes through `spark_flow.delta`'s public names
  (and the public `spark_flow.delta.records`), never its backends or helpers.
- The jvm backend does not lean on the delta-rs bridge: both decide from the shared log reader.
- Path schemes: only `spark_flow.storage` parses a path's scheme.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_flow import delta

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "spark_flow"
DELTA = PACKAGE / "delta"
# Code that uses the toolkit as its users do; tests of private modules may import them.
CLIENTS = [PACKAGE, ROOT / "jobs", ROOT / "bench", ROOT / "tests" / "e2e"]
PUBLIC_MODULES = {"spark_flow.delta", "spark_flow.delta.records"}
DELTA_MODULES = {p.stem for p in DELTA.glob("*.py")} - {"__init__"}


def sources(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def imports(source: str) -> Iterator[tuple[int, str]]:
    """`(line, dotted name)` of every module or name `source` imports."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def private_delta_uses(source: str) -> list[str]:
    """`line N: ...` for every use of a private delta module in `source`."""
    found = []
    for line, name in imports(source):
        parts = name.split(".")
        if parts[:2] != ["spark_flow", "delta"] or len(parts) < 3:
            continue
        if ".".join(parts[:3]) in PUBLIC_MODULES or (len(parts) == 3 and parts[2] in delta.__all__):
            continue
        found.append(f"line {line}: imports {name}")
    for node in ast.walk(ast.parse(source)):  # `from spark_flow import delta`, then `delta.rs`
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "delta"
            and node.attr in DELTA_MODULES - {"records"}
        ):
            found.append(f"line {node.lineno}: uses delta.{node.attr}")
    return found


def test_the_walk_sees_the_delta_modules_it_guards() -> None:
    assert {"rs", "jvm", "source", "_log", "_types", "_schema"} <= DELTA_MODULES


def test_nothing_outside_the_delta_package_uses_its_private_modules() -> None:
    outside = [p for p in sources(*CLIENTS) if DELTA not in p.parents]

    uses = [
        f"{p.relative_to(ROOT)} {use}" for p in outside for use in private_delta_uses(p.read_text())
    ]
    assert uses == []


@pytest.mark.parametrize(
    "source",
    [
        "from spark_flow.delta import rs",
        "from spark_flow.delta._log import open_table",
        "import spark_flow.delta.jvm",
        "from spark_flow import delta\ndelta.rs.write(df, request)",
    ],
)
def test_the_check_catches_every_form_of_private_use(source: str) -> None:
    assert len(private_delta_uses(source)) == 1


def test_the_check_lets_the_public_surface_through() -> None:
    source = (
        "from spark_flow.delta import WriteResult, table_info\n"
        "from spark_flow.delta.records import append_records\n"
        "import spark_flow.delta\n"
        "from spark_flow import delta\n"
        "delta.write(df, path)\n"
    )

    assert private_delta_uses(source) == []


def test_the_jvm_backend_does_not_import_the_delta_rs_bridge() -> None:
    names = [name for _, name in imports((DELTA / "jvm.py").read_text())]

    assert not [
        n for n in names if n.startswith(("spark_flow.delta.rs", "spark_flow.delta.source"))
    ]
    assert "spark_flow.delta._log" in names


def test_only_storage_parses_path_schemes() -> None:
    parsers = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources(PACKAGE, ROOT / "jobs")
        if path not in (PACKAGE / "storage.py", PACKAGE / "_paths.py")  # storage and its spelling
        for line, name in imports(path.read_text())
        if name in ("urllib.parse.urlparse", "urllib.parse.urlsplit")
    ]

    assert parsers == []
