"""The public API: one curated surface, grouped as the package docstring's map says.

A type that users get back from an exported function, or pass into one, must be exported too;
internals (the lock, the planner, the log reader) must not be.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys

import spark_flow

# Names the package docstring's map lists as the families, in order.
FAMILIES = [
    "Sessions and Delta Lake",
    "Status",
    "Local Sequencer",
    "Validation",
    "Isolated Sequencer",
    "Aligned / Unaligned Fan-In",
    "Parallel Split",
    "Exclusive Choice",
    "Output writers",
    "Single / Concurrent Runner",
    "Errors",
]
# Classes of spark_flow that public signatures mention but users never build or hold.
INTERNAL = {"SettledParents", "MappingProxyType"}
_IDENTIFIER = re.compile(r"\b[A-Z][A-Za-z0-9]+\b")


def _families() -> list[list[str]]:
    """`__all__` split at its comments, read from the source (the list itself has no comments)."""
    source = inspect.getsource(spark_flow)
    body = source[source.index("__all__ = [") : source.index("]", source.index("__all__ = ["))]
    groups: list[list[str]] = []
    for raw in body.splitlines()[1:]:
        line = raw.strip()
        if line.startswith("#"):
            groups.append([])
        elif line:
            groups[-1].append(line.strip('",'))
    return groups


def test_star_import_gives_every_exported_name_once() -> None:
    namespace: dict[str, object] = {}
    exec("from spark_flow import *", namespace)

    assert set(spark_flow.__all__) <= set(namespace)
    assert len(spark_flow.__all__) == len(set(spark_flow.__all__))


def test_exports_are_grouped_by_family_as_the_docstring_maps_them() -> None:
    doc = spark_flow.__doc__ or ""
    comments = [
        line.strip()[2:]
        for line in inspect.getsource(spark_flow).splitlines()
        if line.strip().startswith("# ")
    ]
    assert comments == FAMILIES
    assert [doc.index(family) for family in FAMILIES] == sorted(doc.index(f) for f in FAMILIES)
    for group in _families():
        assert group == sorted(group)
    for name in spark_flow.__all__:
        if name != "delta":
            assert f"`{name}`" in doc, f"{name} is exported but the map does not mention it"


def _mentioned_types(obj: object) -> set[str]:
    """CamelCase names in the annotations of a public function, class or its public methods."""
    annotations: list[str] = []

    def of_callable(fn: object) -> None:
        try:
            signature = inspect.signature(fn)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        annotations.extend(str(p.annotation) for p in signature.parameters.values())
        annotations.append(str(signature.return_annotation))

    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            annotations.extend(str(f.type) for f in dataclasses.fields(obj))
        for name, member in vars(obj).items():
            if not name.startswith("_") and callable(member):
                of_callable(member)
        of_callable(obj)
    elif callable(obj):
        of_callable(obj)
    return set(_IDENTIFIER.findall(" ".join(annotations)))


def _spark_flow_classes() -> dict[str, str]:
    """Public class name -> module, for every class defined in a spark_flow module."""
    found: dict[str, str] = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("spark_flow") or module is None:
            continue
        for name, value in vars(module).items():
            ours = inspect.isclass(value) and value.__module__.startswith("spark_flow")
            if ours and not name.startswith("_"):
                found.setdefault(name, value.__module__)
    return found


def test_every_type_a_public_signature_mentions_is_exported() -> None:
    classes = _spark_flow_classes()
    missing = {}
    for name in spark_flow.__all__:
        for mentioned in _mentioned_types(getattr(spark_flow, name)):
            exported = mentioned in spark_flow.__all__ or mentioned in INTERNAL
            if mentioned in classes and not exported:
                missing.setdefault(mentioned, []).append(name)
    assert missing == {}


def test_internals_stay_internal() -> None:
    for internal in ("RunLock", "LockHolder", "WriteRequest", "WritePlan", "Attempts"):
        assert internal not in spark_flow.__all__
