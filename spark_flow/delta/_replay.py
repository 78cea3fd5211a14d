"""A table's files reconciled as delta-spark replays its log: by the file a path names, not by
how the path is spelled.

The protocol lets a remove name its file otherwise than the add did (`part-1.parquet` added,
`file:/table/part-1.parquet` or `file:///table/part-1.parquet` removed; `a%20b/f.parquet` and
`a b/f.parquet`), and lets writers that log absolute paths and writers that log relative ones
share a table. delta-spark resolves every path against the table before it matches removes to
adds (`canonicalPath` in its snapshot state); deltalake and delta-kernel-rs compare the text
(delta-kernel-rs issues 304, 2198, 2402), so a file removed under another spelling stays in
their file list and its rows come back, and a file added under two spellings is read twice.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from spark_flow.delta import _validate
from spark_flow.errors import InvalidArgumentError

log = logging.getLogger(__name__)

_PROBE = "_spark_flow_probe"  # a relative path whose key shows the table's own prefix


def reconciled(
    path: str,
    version: int,
    actions: list[dict[str, Any]],
    key: Callable[[str], str],
) -> list[dict[str, Any]]:
    """`actions` (deltalake's live add actions of `version` of the table at `path`) without
    the files a later remove names by another spelling, and each file once.

    `key` gives the one spelling of the file a logged path names. The commits replayed after
    the checkpoint decide which action touched a file last; within one commit an add wins over
    a remove, as when a deletion vector replaces another. Files a checkpoint alone holds were
    reconciled by the writer of that checkpoint.
    """
    logged = [
        (kind, action[kind]["path"])
        for _, commit in _validate.replayed_commits(path, version)
        for kind in ("remove", "add")
        for action in commit
        if isinstance(action.get(kind), dict) and isinstance(action[kind].get("path"), str)
    ]
    if all(map(_plain, (p for _, p in logged))) and all(_plain(a["path"]) for a in actions):
        return actions  # one spelling per file: deltalake's replay is delta-spark's
    inside = _inside(key)
    last = {inside(spelled): (kind, spelled) for kind, spelled in logged}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for action in actions:
        by_file.setdefault(inside(action["path"]), []).append(action)
    kept = []
    for file, named in by_file.items():
        kind, spelled = last.get(file, ("add", named[0]["path"]))
        if kind == "remove":
            log.info("%s: %s is removed by a remove spelling it %r", path, file, spelled)
            continue
        if len({action["path"] for action in named}) == 1:
            kept.extend(named)  # one spelling: the adds are deltalake's to reconcile
            continue
        log.info("%s: %s is added under %d spellings; reading it once", path, file, len(named))
        kept.append(next((a for a in named if a["path"] == spelled), named[0]))
    return kept


def _plain(logged: str) -> bool:
    """Whether a logged path is relative and spelled as no other path can name its file: no
    scheme, no escapes, no `.` or empty segments (a cheap test; files are many)."""
    return not (
        ":" in logged or "%" in logged or logged.startswith("/") or "//" in logged
        or "./" in logged
    )  # fmt: skip


def _inside(key: Callable[[str], str]) -> Callable[[str], str]:
    """`key` as a path inside the table where it is one, decoded by the cheap way for the
    relative paths most of a log holds; absolute spellings resolved by `key`, then made
    relative where they name a file of the table."""
    root = key(_PROBE).removesuffix(_PROBE)

    def inside(logged: str) -> str:
        if ":" not in logged and not logged.startswith("/"):
            return posixpath.normpath(unquote(logged))
        try:
            resolved = key(logged)
        except InvalidArgumentError:  # `file://host/...`: no file here, only its text matches
            return logged
        return resolved.removeprefix(root) if resolved.startswith(root) else resolved

    return inside
