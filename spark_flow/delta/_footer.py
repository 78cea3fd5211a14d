"""A Parquet footer's column chunks, found by each column's path of names.

A footer names a column by its dotted path (`path_in_schema`), which cannot tell a top-level
column named `x.y` from the field `y` of a struct `x`: looked up by that text, the two
columns' chunks are merged and their statistics summed. The file's own schema gives each leaf
its path as a tuple of names instead, in the footer's column order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Path = tuple[str, ...]
_INSIDE = "\0"  # the step into an array's elements or a map's entries: no field's name
_LISTS = (
    pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list,
    pa.types.is_list_view, pa.types.is_large_list_view,
)  # fmt: skip


def column_chunks(metadata: pq.FileMetaData) -> dict[Path, list[Any]]:
    """Each leaf column's chunks, one per row group, by its path of names in the file (an
    empty file lists every column, with no chunks)."""
    paths = list(_leaf_paths(metadata.schema.to_arrow_schema()))
    if len(paths) != metadata.num_columns:  # a layout Arrow reads otherwise: the footer's text
        paths = [tuple(metadata.schema.column(i).path.split(".")) for i in range(len(paths))]
    chunks: dict[Path, list[Any]] = {path: [] for path in paths}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for column in range(row_group.num_columns):
            chunks[paths[column]].append(row_group.column(column))
    return chunks


def _leaf_paths(fields: Iterable[pa.Field], parent: Path = ()) -> Iterator[Path]:
    for field in fields:
        path, data_type = (*parent, field.name), field.type
        if pa.types.is_struct(data_type):
            yield from _leaf_paths(data_type.fields, path)
        elif pa.types.is_map(data_type):
            yield from _leaf_paths([data_type.key_field, data_type.item_field], (*path, _INSIDE))
        elif any(is_list(data_type) for is_list in _LISTS):
            yield from _leaf_paths([data_type.value_field], (*path, _INSIDE))
        else:
            yield path
