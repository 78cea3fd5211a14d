"""Paths and stores: the one place in spark_flow that knows what a path's scheme allows.

Two kinds of location:

- **local**: a plain path or a `file:` URI, mounted volumes included (NFS, `/dbfs`, `/Volumes`).
  A rename is atomic there, so files are staged beside their destination and published by one
  rename.
- **stores**: every other scheme, object stores first (`s3://`, `gs://`, `abfss://` ...). No folder
  can be renamed atomically, but one object is written whole by one PUT, which is all a small
  file such as a readiness marker needs. pyarrow.fs reads and writes those objects and deltalake
  reads Delta logs there, both with the credentials of the environment (`AWS_*`, `GOOGLE_*`,
  `AZURE_*` variables, instance profiles).

Pattern modules pass every path through here instead of parsing it themselves, so a new scheme
is taught once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlparse

from spark_flow.errors import InvalidArgumentError, StorageError

if TYPE_CHECKING:
    from pyarrow import NativeFile
    from pyarrow.fs import FileSystem

__all__ = [
    "STAGING_DIR",
    "absolute",
    "decode_uri",
    "exists",
    "folder",
    "is_local",
    "join",
    "local_folder",
    "open_input_file",
    "read_text",
    "scheme",
    "write_text_atomically",
]

STAGING_DIR = "_spark_flow_staging"
"""Where writers stage files inside an output before publishing them; readers skip `_` folders."""

_T = TypeVar("_T")

# Hadoop's names for S3, which pyarrow.fs knows as s3 only.
_PYARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}


def scheme(path: str) -> str:
    """The scheme of `path`: `file` for plain paths and `file:` URIs, else the URI's, lower-case."""
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(
            "path", f"expected a non-empty path or URI, got {path!r}", "Pass a path."
        )
    return urlparse(path).scheme.lower() or "file"


def is_local(path: str) -> bool:
    """True for plain paths and `file:` URIs: a filesystem with atomic renames."""
    return scheme(path) == "file"


def absolute(path: str) -> str:
    """`path` as Spark names it: an absolute local path (file or folder), or a store's URI as is.

    Example:
        >>> absolute("file:///data/in"), absolute("s3://bucket/in")
        ('/data/in', 's3://bucket/in')
    """
    return _local(path) if is_local(path) else path


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
        return _local(uri)
    return f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}"


def folder(path: str) -> str:
    """`path` as deltalake, pyarrow and Spark take it: an absolute local path, or the URI.

    Raises:
        InvalidArgumentError: a local `path` is a file where a folder is expected, or a `file:`
            URI names another host.
    """
    if not is_local(path):
        return path
    local = _local(path)
    if os.path.isfile(local):
        raise InvalidArgumentError(
            "path", f"{path!r} is a file, not a folder", "Move the file away or fix the path."
        )
    return local


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

    Example:
        >>> join("s3://bucket/devices", "_spark_flow_ready", "latest.json")
        's3://bucket/devices/_spark_flow_ready/latest.json'
    """
    if is_local(path):
        return os.path.join(folder(path), *parts)
    return "/".join([path.rstrip("/"), *parts])


def exists(path: str) -> bool:
    """True when a file or folder is at `path` (on a store: an object or a prefix of some)."""
    if is_local(path):
        return os.path.exists(_local(path))
    from pyarrow.fs import FileType

    filesystem, location = _store(path)
    info = _attempt(path, "look up", lambda: filesystem.get_file_info(location))
    return bool(info.type != FileType.NotFound)


def read_text(path: str) -> str | None:
    """The text of the file at `path`, or None when there is none."""
    if is_local(path):
        try:
            return Path(_local(path)).read_text()
        except FileNotFoundError:
            return None
    filesystem, location = _store(path)

    def read() -> str | None:
        try:
            with filesystem.open_input_stream(location) as source:
                return bytes(source.read()).decode()
        except FileNotFoundError:
            return None

    return _attempt(path, "read", read)


def open_input_file(path: str) -> NativeFile:
    """The file at `path` opened for random access (Parquet readers seek to the footer)."""
    if is_local(path):
        from pyarrow import OSFile

        return _attempt(path, "open", lambda: OSFile(_local(path)))
    filesystem, location = _store(path)
    return _attempt(path, "open", lambda: filesystem.open_input_file(location))


def write_text_atomically(path: str, text: str) -> None:
    """Write `text` to `path` so that readers see the old content or the new, never a part.

    Locally a temporary file beside it is renamed over it; on a store the object is written by
    one upload, which becomes visible only when complete.
    """
    if not is_local(path):
        filesystem, location = _store(path)

        def upload() -> None:
            with filesystem.open_output_stream(location) as out:
                out.write(text.encode())

        _attempt(path, "write", upload)
        return
    target = Path(_local(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _local(path: str) -> str:
    """The absolute local path of a plain path or `file:` URI."""
    parsed = urlparse(path)
    if not parsed.scheme:
        return os.path.abspath(path)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidArgumentError(
            "path",
            f"{path!r} names host {parsed.netloc!r}; a file: URI names a path on this machine",
            "Write file:///absolute/path (three slashes) or a plain path.",
        )
    return os.path.abspath(unquote(parsed.path))


def _store(path: str) -> tuple[FileSystem, str]:
    """The pyarrow filesystem of a store URI and the location inside it."""
    from pyarrow.fs import FileSystem

    uri = path
    alias = _PYARROW_SCHEMES.get(scheme(path))
    if alias is not None:
        uri = alias + path[len(urlparse(path).scheme) :]
    opened: tuple[FileSystem, str] = _attempt(
        path, "open the store of", lambda: FileSystem.from_uri(uri)
    )
    return opened


def _attempt(path: str, action: str, call: Callable[[], _T]) -> _T:
    """`call()`, with the store client's failures (credentials, network, scheme) as StorageError."""
    from pyarrow import ArrowException

    try:
        return call()
    except (OSError, ArrowException) as exc:
        raise StorageError(path, action, str(exc).strip()) from exc
