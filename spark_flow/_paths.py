"""How a path is spelled: its scheme, local or on a store, joined, decoded, checked.

No I/O here (`storage` does that): the rules that say what a path names, so every module reads
`s3a://bucket/t`, `S3://bucket/t/` and `/data/t` alike, and a path no store client can take
(`s3://` without a bucket, `hdfs://`) is refused by name before anything runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from spark_flow._store_settings import S3_SCHEMES
from spark_flow.errors import InvalidArgumentError, StorageError

__all__ = [
    "HIVE_NULL",
    "STORE_SCHEMES",
    "absolute",
    "ambiguous_root",
    "comparable",
    "decode_uri",
    "escape_path_name",
    "folder",
    "is_local",
    "join",
    "local_folder",
    "local_path",
    "partition_directory",
    "scheme",
    "store_problem",
]

# The object stores deltalake, pyarrow.fs and obstore all reach.
STORE_SCHEMES = frozenset({*S3_SCHEMES, "gs", "gcs", "az", "abfs", "abfss", "adl", "azure"})
# `%` and two hex digits: deltalake and obstore decode it in a URI, Spark and pyarrow keep it.
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def scheme(path: str) -> str:
    """The scheme of `path`: `file` for plain paths and `file:` URIs, else the URI's, lower-case."""
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(
            "path", f"expected a non-empty path or URI, got {path!r}", "Pass a path."
        )
    return urlparse(path).scheme.lower() or "file"


# Other names clients give the same stores: Hadoop's for S3, gcsfs's for Google Cloud Storage.
_SAME_STORE = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}


def comparable(path: str) -> str:
    """`path` spelled one way, to tell whether two paths name one location: local paths
    absolute and resolved (`./in/`, a symlink to it), store URIs with one scheme per store
    (`S3://`, `s3a://` -> `s3://`) and no trailing `/`.

    Example:
        >>> comparable("s3a://bucket/t/") == comparable("S3://bucket/t")
        True
    """
    if is_local(path):
        return os.path.realpath(absolute(path))
    parsed = urlparse(path)
    store = scheme(path)
    return f"{_SAME_STORE.get(store, store)}://{parsed.netloc}{parsed.path}".rstrip("/")


def is_local(path: str) -> bool:
    """True for plain paths and `file:` URIs: a filesystem with atomic renames."""
    return scheme(path) == "file"


def absolute(path: str) -> str:
    """`path` as Spark names it: an absolute local path (file or folder), or a store's URI as is.

    Example:
        >>> absolute("file:///data/in"), absolute("s3://bucket/in")
        ('/data/in', 's3://bucket/in')
    """
    return local_path(path) if is_local(path) else path


def decode_uri(uri: str) -> str:
    """What a URI-encoded `uri` names: `file:` URIs as absolute local paths, store URIs with
    their path decoded, scheme-less (relative) text decoded. Delta logs and Spark's file
    names encode every location this way.

    Example:
        >>> decode_uri("file:///data/a%20b"), decode_uri("s3://bucket/a%20b"), decode_uri("x%3Dy")
        ('/data/a b', 's3://bucket/a b', 'x=y')
    """
    parsed = urlparse(uri)
    if not parsed.scheme:
        return unquote(uri)
    if is_local(uri):
        return local_path(uri)
    return f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}"


def folder(path: str) -> str:
    """`path` as deltalake, pyarrow and Spark take it: an absolute local path, or the URI.

    Raises:
        InvalidArgumentError: a local `path` is a file where a folder is expected, or a `file:`
            URI names another host.
    """
    if not is_local(path):
        return _client_uri(path)
    local = local_path(path)
    if os.path.isfile(local):
        raise InvalidArgumentError(
            "path", f"{path!r} is a file, not a folder", "Move the file away or fix the path."
        )
    return local


# Hadoop's s3n:// is S3 to Spark users, but deltalake and obstore know s3:// and s3a:// only.
_CLIENT_SCHEMES = {"s3n": "s3a"}


def _client_uri(uri: str) -> str:
    """The store URI `uri` in a scheme deltalake, obstore and pyarrow all know (`s3n` -> `s3a`)."""
    given = urlparse(uri).scheme
    known = _CLIENT_SCHEMES.get(given.lower())
    return uri if known is None else known + uri[len(given) :]


def local_folder(path: str, *, purpose: str, fix: str) -> Path:
    """The absolute local folder of `path`, for work that needs an atomic rename.

    Args:
        path: a plain path or a `file:` URI.
        purpose: what needs the rename, e.g. "csv outputs publish each batch with a folder
            rename"; the error starts with it.
        fix: what the caller can do instead on an object store.

    Raises:
        InvalidArgumentError: `path` is on an object store (or another non-local scheme), or is
            a file.
    """
    if not is_local(path):
        raise InvalidArgumentError(
            "path",
            f"{purpose}, which is atomic only on local or mounted filesystems, not on "
            f"{scheme(path)}:// ({path!r})",
            fix,
        )
    return Path(folder(path))


def join(path: str, *parts: str) -> str:
    """`parts` below `path`: a local path for local locations, a URI for stores.

    Raises:
        StorageError: `path` is a store URI without a bucket (`s3://`): nothing is below it.

    Example:
        >>> join("s3://bucket/devices", "_spark_flow_ready", "latest.json")
        's3://bucket/devices/_spark_flow_ready/latest.json'
    """
    if is_local(path):
        return os.path.join(folder(path), *parts)
    if not urlparse(path).netloc:
        # Joined, `s3://` would lose a slash (`s3:/runs`) or take the part for a bucket.
        raise StorageError(path, "find a place below", _no_bucket(scheme(path)))
    return "/".join([path.rstrip("/"), *parts])


def local_path(path: str) -> str:
    """The absolute local path of a plain path or `file:` URI.

    A `#` or `?` in a `file:` URI is part of the path, as Hadoop's `Path` (so Spark) takes it,
    not a fragment or a query: `file:/data/run#2` names the folder `/data/run#2`.
    """
    if not urlparse(path).scheme:
        return os.path.abspath(path)
    rest = path.split(":", 1)[1]
    host = ""
    if rest.startswith("//"):
        host, slash, rest = rest[2:].partition("/")
        rest = slash + rest
    if host not in ("", "localhost"):
        raise InvalidArgumentError(
            "path",
            f"{path!r} names host {host!r}; a file: URI names a path on this machine",
            "Write file:///absolute/path (three slashes) or a plain path.",
        )
    return os.path.abspath(unquote(rest))


def store_problem(path: str) -> str | None:
    """Why no store client can open the URI `path`, or None when they can: an unknown scheme,
    or no bucket (container) named. Deeper keys may hold anything, `%` included: a Hive
    partition folder of a value with `/` is `country=a%2Fb`."""
    kind = scheme(path)
    if kind not in STORE_SCHEMES:
        return (
            f"no object store is known for {kind}://; the supported schemes are "
            f"{sorted(STORE_SCHEMES)}. Delta logs, markers and leases are read with deltalake, "
            "pyarrow and obstore, which reach no other: use one of those stores, or a local or "
            "mounted path (e.g. a FUSE or NFS mount)"
        )
    if not urlparse(path).netloc:
        return _no_bucket(kind)
    return None


def _no_bucket(kind: str) -> str:
    return (
        f"the URI names no bucket: write {kind}://<bucket>/<folder>, e.g. "
        f"{kind}://warehouse/devices"
    )


def ambiguous_root(path: str) -> str | None:
    """Why the store location `path` (a table's, an output's) would name different objects in
    different clients, or None: a `%XX` sequence, which deltalake decodes and Spark does not;
    on a store also a `#` or `?` (deltalake and obstore cut a URI there, Spark and pyarrow
    keep it in the key), whitespace ending the URI or a control character, and a folder
    named ``, `.` or `..` (`//` and `./`, which pyarrow and obstore refuse or resolve)."""
    escape = _ESCAPE.search(path)
    if escape is None:
        return None if is_local(path) else _cut_store_uri(path)
    return (
        f"{escape.group()!r} in the path reads as an escaped character to deltalake and as "
        "those three characters to Spark and pyarrow, so they would write to different "
        "folders. Rename the folder without '%'"
    )


HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
"""How Spark names the folder of a null (or empty) partition value."""
# Spark's ExternalCatalogUtils.escapePathName: characters a partition directory name escapes.
_PATH_ESCAPED = frozenset("\"#%'*/:=?\\\x7f{[]^") | {chr(c) for c in range(0x01, 0x20)}
_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # what URL parsers trim from the ends of a URI


def escape_path_name(value: str) -> str:
    """`value` as Spark writes it in a `col=value` directory name (`%XX` for unsafe chars)."""
    return "".join(f"%{ord(c):02X}" if c in _PATH_ESCAPED else c for c in value)


def partition_directory(values: Mapping[str, str | None]) -> str:
    """The Hive-style folders of `values` as Spark's `partitionBy` names them, e.g.
    `date=2024-01-01/country=fr`; None (or "") is `__HIVE_DEFAULT_PARTITION__`."""
    return "/".join(
        f"{escape_path_name(column)}={escape_path_name(value) if value else HIVE_NULL}"
        for column, value in values.items()
    )


def _cut_store_uri(uri: str) -> str | None:
    """Why the clients would read the store URI `uri` as different keys, or None."""
    key = uri.partition("://")[2].partition("/")[2].rstrip("/")
    cut = next((mark for mark in "#?" if mark in uri), None)
    if cut is not None:
        return (
            f"{cut!r} in the path ends the URI's path for deltalake and obstore (a "
            f"{'fragment' if cut == '#' else 'query'} follows) and is part of the key for Spark "
            f"and pyarrow, so the log and the data would land in different folders. Rename the "
            f"folder without {cut!r}"
        )
    # URI parsers drop what Spark and pyarrow keep in the key: a space or a newline that
    # ends the URI (ASCII only, as URL parsers trim), a control character anywhere.
    trailing = uri != uri.rstrip(_C0_OR_SPACE)
    if trailing or any(ord(c) < 0x20 or c == "\x7f" for c in key):
        where = "ends with whitespace" if trailing else "holds a control character"
        return (
            f"the key {key!r} {where}, which deltalake and obstore drop from a URI and Spark "
            "and pyarrow keep, so the log and the data would land in different folders. "
            "Strip it from the location"
        )
    segments = key.split("/") if key else []
    if "" in segments:
        return (
            f"the key {key!r} holds an empty folder name ('//'), which pyarrow and obstore "
            "refuse and Hadoop drops: write one '/' between folder names"
        )
    if "." in segments or ".." in segments:
        return (
            f"the key {key!r} holds a '.' or '..' folder name, which deltalake resolves, "
            "obstore refuses and pyarrow keeps as a name: write the folder it means"
        )
    return None
