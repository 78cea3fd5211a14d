"""Random Delta tables from a seed, written per the protocol, with the rows a reader must return.

`generate(seed, root)` builds a table with `TableBuilder` (`tests/_delta_tables.py`): random
column types (every primitive, decimals of several precisions and scales, nested structs, arrays
and maps), null-heavy columns, partition columns of several types (nulls, empty strings and
special characters among their values), column mapping `none` / `name` / `id` on either protocol,
and a history of commits: appends, removes, deletion vectors (inline or in files, on one-row files,
deleting every row), renames and drops, a checkpoint in the middle. It keeps its own model of
each version's rows, so a read is checked against the truth, not only against another reader.
"""

from __future__ import annotations

import datetime as dt
import random
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from _delta_generated_stats import stats_json
from _delta_tables import TableBuilder
from deltalake import DeltaTable

UTC = dt.timezone.utc
PRIMITIVES = ["string", "long", "integer", "short", "byte", "double", "float", "boolean",
              "binary", "date", "timestamp", "timestamp_ntz"]  # fmt: skip
DECIMALS = ["decimal(1,0)", "decimal(5,2)", "decimal(9,9)", "decimal(10,0)", "decimal(18,4)",
            "decimal(19,2)", "decimal(28,10)", "decimal(38,0)", "decimal(38,18)"]  # fmt: skip
PARTITION_TYPES = ["string", "long", "integer", "short", "byte", "boolean", "date",
                   "timestamp", "timestamp_ntz", "decimal(10,2)", "decimal(25,5)", "double",
                   "float"]  # fmt: skip
STRINGS = ["", " ", "a", "a b", "x=y", "a/b", "100%", "%2F", "é", "日本語", "🙂", "null",
           "__HIVE_DEFAULT_PARTITION__", "tab\there", "quote'\"", "back\\slash",
           "a string longer than the 32 characters of stats"]  # fmt: skip
# delta-rs (object_store) refuses control characters in paths: no tab in file names. Names
# Spark cannot read by name (hidden ones, a `:`) go to the Arrow reader.
FILE_NAMES = [name for name in STRINGS[1:] if "\t" not in name] + ["10:30", "_x", ".x"]
_INTEGERS = {"long": 63, "integer": 31, "short": 15, "byte": 7}


@dataclass
class Generated:
    """A generated table: its root, and each version's rows as a reader must return them."""

    seed: int
    root: Path
    description: list[str] = field(default_factory=list)
    versions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    partitioned: bool = False
    mapped: bool = False
    deletions: bool = False
    absolute_paths: bool = False
    earlier: int | None = None
    types: dict[int, dict[str, Any]] = field(default_factory=dict)
    partition_columns: dict[int, tuple[str, ...]] = field(default_factory=dict)


def _decimal(rng: random.Random, data_type: str) -> Decimal:
    precision, scale = (int(n) for n in data_type[len("decimal(") : -1].split(","))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, precision)))
    if rng.random() < 0.2:  # every digit used: the type's extremes
        digits = rng.choice(["9", "1"]) * precision
    digits = digits.rjust(scale, "0")
    whole, fraction = digits[: len(digits) - scale] or "0", digits[len(digits) - scale :]
    negative = rng.random() < 0.5 and digits.strip("0")  # no -0: readers drop the sign
    text = ("-" if negative else "") + whole + ("." + fraction if scale else "")
    return Decimal(text)


def _float32(value: float) -> float:
    (rounded,) = struct.unpack("<f", struct.pack("<f", value))
    return float(rounded)


def _timestamp(rng: random.Random) -> dt.datetime:
    if rng.random() < 0.1:  # far from the epoch: calendar rebasing, INT96 range
        year = rng.choice([1, 1000, 1582, 1899, 9999])
    else:
        year = rng.randint(1950, 2100)
    base = dt.datetime(year, 1, 1)
    return base + dt.timedelta(microseconds=rng.randint(0, 364 * 86_400 * 10**6))


def value(rng: random.Random, data_type: Any) -> Any:
    """A random non-null value of the Delta type `data_type` (TableBuilder's notation)."""
    if isinstance(data_type, list):
        return {name: maybe(rng, t, 0.2) for name, t in data_type}
    if isinstance(data_type, dict) and data_type["type"] == "array":
        return [maybe(rng, data_type["elementType"], 0.2) for _ in range(rng.randint(0, 3))]
    if isinstance(data_type, dict):
        keys = {value(rng, data_type["keyType"]) for _ in range(rng.randint(0, 3))}
        return [(k, maybe(rng, data_type["valueType"], 0.2)) for k in sorted(keys)]
    if data_type in _INTEGERS:
        bits = _INTEGERS[data_type]
        extremes = [-(2**bits), 2**bits - 1, 0, -1]
        return rng.choice(extremes) if rng.random() < 0.3 else rng.randint(*extremes[:2])
    if data_type.startswith("decimal"):
        return _decimal(rng, data_type)
    return _PRIMITIVE_VALUES[data_type](rng)


def _float(rng: random.Random) -> float:
    return rng.choice([0.0, -0.0, 1.5, -2.25, 1e30, -1e-30, float("inf"), float("-inf"),
                       float("nan"), rng.uniform(-1e6, 1e6)])  # fmt: skip


_PRIMITIVE_VALUES = {
    "double": _float,
    "float": lambda rng: _float32(_float(rng)),
    "string": lambda rng: rng.choice(STRINGS) + str(rng.randint(0, 99)) * (rng.random() < 0.5),
    "boolean": lambda rng: rng.random() < 0.5,
    "binary": lambda rng: bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 6))),
    "date": lambda rng: _timestamp(rng).date(),
    "timestamp": lambda rng: _timestamp(rng).replace(tzinfo=UTC),
    "timestamp_ntz": _timestamp,
}


def maybe(rng: random.Random, data_type: Any, nulls: float) -> Any:
    return None if rng.random() < nulls else value(rng, data_type)


def random_type(rng: random.Random, depth: int = 0, *, ntz: bool = True) -> Any:
    roll = rng.random()
    if depth < 2 and roll < 0.08:
        return [(f"f{n}", random_type(rng, depth + 1, ntz=ntz)) for n in range(rng.randint(1, 3))]
    if depth < 2 and roll < 0.14:
        element = random_type(rng, depth + 1, ntz=ntz)
        return {"type": "array", "elementType": element, "containsNull": True}
    if depth < 2 and roll < 0.2:
        key = rng.choice(["string", "integer", "long", "date"])
        item = random_type(rng, depth + 1, ntz=ntz)
        return {"type": "map", "keyType": key, "valueType": item, "valueContainsNull": True}
    primitives = PRIMITIVES if ntz else [p for p in PRIMITIVES if p != "timestamp_ntz"]
    return rng.choice(primitives + DECIMALS)


def partition_text(data_type: str, typed: Any) -> str | None:
    """A partition value as the log's `partitionValues` spell it (None: a null partition)."""
    if typed is None:
        return None
    spell = _PARTITION_TEXT.get(data_type, str)
    return spell(typed)


_PARTITION_TEXT = {
    "boolean": lambda typed: "true" if typed else "false",
    "timestamp": lambda typed: typed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    "timestamp_ntz": lambda typed: typed.strftime("%Y-%m-%d %H:%M:%S.%f"),
    "date": lambda typed: typed.isoformat(),
    "double": repr,
    "float": repr,
}


def partition_value(rng: random.Random, data_type: str) -> Any:
    if rng.random() < 0.2:
        return None
    if data_type == "string":
        return rng.choice(STRINGS)
    if data_type in ("double", "float"):
        return rng.choice([0.0, 1.5, -0.25, 1e10, 3.0])
    if data_type in ("timestamp", "timestamp_ntz"):
        moment = dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10**13))
        return moment.replace(tzinfo=UTC) if data_type == "timestamp" else moment
    if data_type == "date":
        return dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(-400, 400))
    return value(rng, data_type)


@dataclass
class _File:
    add: dict[str, Any]
    rows: list[dict[str, Any]]
    partitions: dict[str, Any]
    deleted: set[int] = field(default_factory=set)

    def kept(self) -> list[int]:
        return [index for index in range(len(self.rows)) if index not in self.deleted]


def generate(seed: int, root: Path) -> Generated:
    """Build the table of `seed` under `root`; its versions' expected rows."""
    story = _Story(random.Random(seed), Generated(seed, root))
    for _ in range(story.rng.randint(1, 6)):
        story.step()
    versions = sorted(story.generated.versions)
    story.generated.earlier = story.rng.choice(versions[:-1]) if len(versions) > 1 else None
    return story.generated


class _Story:
    """A table's history told commit by commit, with the rows each version holds."""

    def __init__(self, rng: random.Random, generated: Generated) -> None:
        self.rng, self.generated = rng, generated
        self.mapping = rng.choice(["none", "name", "id"])
        deletions = rng.random() < 0.6
        features = deletions or rng.random() < 0.6
        self.columns: dict[str, Any] = {}
        self.nulls: dict[str, float] = {}
        for n in range(rng.randint(1, 6)):
            names = (
                [f"c{n}", f"Col {n}", f"c{n}.x", f"é{n}"] if self.mapping != "none" else [f"c{n}"]
            )
            name = rng.choice(names)
            self.columns[name] = random_type(rng, ntz=features)
            self.nulls[name] = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])
        choices = [t for t in PARTITION_TYPES if features or t != "timestamp_ntz"]
        self.partition_types = {
            f"p{n}": rng.choice(choices) for n in range(rng.choice([0, 0, 1, 2, 3]))
        }
        fields = [*self.columns.items(), *self.partition_types.items()]
        rng.shuffle(fields)
        self.order = [name for name, _ in fields]  # logical names in the schema's order
        self.table = TableBuilder(
            generated.root,
            fields,
            mapping=self.mapping,
            features=features,
            deletion_vectors=deletions,
            partition_columns=tuple(self.partition_types),
            reader_features=("timestampNtz",) if "timestamp_ntz" in repr(fields) else (),
        )
        generated.partitioned, generated.mapped = bool(self.partition_types), self.mapping != "none"
        generated.deletions = deletions
        generated.description.append(
            f"mapping={self.mapping} features={features} dv={deletions} fields={fields} "
            f"partitions={list(self.partition_types)}"
        )
        self.live: list[_File] = []
        self.snapshot()

    def snapshot(self) -> None:
        rows = []
        for f in self.live:
            for index, row in enumerate(f.rows):
                if index not in f.deleted:
                    full = {**row, **f.partitions}
                    rows.append({name: full.get(name) for name in self.order})
        self.generated.versions[self.table.version] = rows
        types = {**self.columns, **self.partition_types}
        self.generated.types[self.table.version] = {name: types[name] for name in self.order}
        self.generated.partition_columns[self.table.version] = tuple(self.partition_types)

    def step(self) -> None:
        """One commit: add files, remove one, delete rows by a DV, rename or drop a column."""
        rng, mapped = self.rng, self.mapping != "none"
        roll = rng.random()
        if roll < 0.5 or not self.live:
            actions = self.add(rng.randint(1, 3))
        elif roll < 0.6:
            actions = self.remove()
        elif roll < 0.85 and self.generated.deletions and any(map(_File.kept, self.live)):
            actions = self.delete()
        elif mapped and roll < 0.93:
            return self.rename()
        elif mapped and len(self.columns) > 1:
            return self.drop()
        else:
            actions = self.add(1)
        self.table.commit(*actions)
        self.snapshot()
        if rng.random() < 0.25:
            DeltaTable(str(self.generated.root)).create_checkpoint()
            self.generated.description.append(f"checkpoint at v{self.table.version}")
        return None

    def add(self, files: int) -> list[dict[str, Any]]:
        added = [self.new_file() for _ in range(files)]
        self.live.extend(added)
        self.note(f"add {len(added)} files of {[len(f.rows) for f in added]} rows")
        return [f.add for f in added]

    def new_file(self) -> _File:
        rng = self.rng
        count = rng.choice([0, 1, 1, 2, 5, 17, 40])
        rows = [
            {c: maybe(rng, t, self.nulls[c]) for c, t in self.columns.items()} for _ in range(count)
        ]
        typed = {p: partition_value(rng, t) for p, t in self.partition_types.items()}
        texts = {p: partition_text(self.partition_types[p], v) for p, v in typed.items()}
        for p, v in typed.items():  # the protocol's other spelling: ISO 8601 in UTC
            if self.partition_types[p] == "timestamp" and v is not None and rng.random() < 0.5:
                texts[p] = v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # Delta reads an empty partition value as null (deltalake's scan reads '').
        typed = {p: None if texts[p] == "" else v for p, v in typed.items()}
        layout = rng.choice([None, "hive", "absolute", "odd"])
        relative = None
        if layout == "hive" and texts:
            folders = [f"{p}={_escaped(t)}" for p, t in texts.items()]
            relative = "/".join(folders) + f"/{rng.random()}.parquet"
        elif layout == "odd":
            relative = f"odd dir/{rng.choice(FILE_NAMES)}{rng.randint(0, 9**9)}.parquet"
        parquet = rng.choice([{}, {"use_deprecated_int96_timestamps": True},
                              {"store_decimal_as_integer": True}])  # fmt: skip
        self.generated.absolute_paths |= layout == "absolute"
        add = self.table.add(
            rows, texts, relative=relative, absolute=layout == "absolute", **parquet
        )
        if rng.random() < 0.7:  # min/max/nullCount, which file skipping trusts
            stored = [f for f in self.table.schema["fields"] if f["name"] in self.columns]
            add["add"]["stats"] = stats_json(stored, rows)
        return _File(add, rows, typed)

    def remove(self) -> list[dict[str, Any]]:
        add = self.live.pop(self.rng.randrange(len(self.live))).add["add"]
        remove = {"path": add["path"], "deletionTimestamp": 0, "dataChange": True,
                  "partitionValues": add["partitionValues"], "size": add["size"]}  # fmt: skip
        if "deletionVector" in add:
            remove["deletionVector"] = add["deletionVector"]
        self.note("remove a file")
        return [{"remove": remove}]

    def delete(self) -> list[dict[str, Any]]:
        """A deletion vector on one file: some of its rows left, or all of them.

        Always more rows than before: re-adding a file with the DV it has in the commit that
        removes it is an invalid version (the protocol leaves the order of its actions open).
        """
        rng = self.rng
        f = rng.choice([f for f in self.live if f.kept()])
        left = f.kept()
        f.deleted |= set(rng.choice([left, rng.sample(left, k=rng.randint(1, len(left)))]))
        inline = rng.random() < 0.5
        actions = self.table.delete(f.add, sorted(f.deleted), inline=inline)
        f.add = actions[-1]
        self.note(f"DV {sorted(f.deleted)} of {len(f.rows)} rows, inline={inline}")
        return actions

    def rename(self) -> None:
        """Rename a data or partition column: the log changes, the files and values do not."""
        old = self.rng.choice(self.order)
        new = self.rng.choice(["renamed", "r é", "r.x"]) + str(self.table.version)
        if old in self.partition_types:
            self.table.partition_columns = tuple(
                new if c == old else c for c in self.table.partition_columns
            )
            self.partition_types = {
                (new if c == old else c): t for c, t in self.partition_types.items()
            }
            for f in self.live:
                f.partitions = {(new if c == old else c): v for c, v in f.partitions.items()}
        else:
            self.columns[new], self.nulls[new] = self.columns.pop(old), self.nulls.pop(old)
            for f in self.live:
                f.rows = [{(new if k == old else k): v for k, v in r.items()} for r in f.rows]
        self.table.rename(old, new)
        self.order[self.order.index(old)] = new
        self.generated.description.append(f"v{self.table.version}: rename {old!r} -> {new!r}")
        self.snapshot()

    def drop(self) -> None:
        old = self.rng.choice(list(self.columns))
        self.table.drop(old)
        self.order.remove(old)
        del self.columns[old]
        for f in self.live:
            f.rows = [{k: v for k, v in r.items() if k != old} for r in f.rows]
        self.generated.description.append(f"v{self.table.version}: drop {old!r}")
        self.snapshot()

    def note(self, what: str) -> None:
        self.generated.description.append(f"v{self.table.version + 1}: {what}")


# What Spark escapes in a partition folder's name (ExternalCatalogUtils.escapePathName).
_SPARK_ESCAPED = set("\"#%'*/:=?\\\x7f{[]^") | {chr(c) for c in range(32)}


def _escaped(text: str | None) -> str:
    if text is None:
        return "__HIVE_DEFAULT_PARTITION__"
    return "".join(f"%{ord(c):02X}" if c in _SPARK_ESCAPED else c for c in text)
