"""Paths and stores: the one place in spark_flow that knows what a path's scheme allows.

Two kinds of location:

- **local**: a plain path or a `file:` URI, mounted volumes included (NFS, `/dbfs`, `/Volumes`).
  A rename is atomic there, so files are staged beside their destination and published by one
  rename.
- **stores**: every other scheme, object stores first (`s3://`, `gs://`, `abfss://` ...). No folder
  can be renamed atomically, but one object is written whole by one PUT, which is all a small
  file such as a readiness marker needs. pyarrow.fs writes and lists those objects, deltalake
  reads and commits Delta logs there, obstore reads objects (one GET each) and serves
  conditional puts; all three take their credentials the standard ways (`AWS_*`, `GOOGLE_*`,
  `AZURE_*` variables, `~/.aws` profiles, instance profiles) and the endpoint and options from
  `options(path, client=...)`, which merges a profile's `[storage]` table (`configure`) with
  the environment.

Pattern modules pass every path through here instead of parsing it themselves, so a new scheme
is taught once.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from spark_flow._paths import (
    absolute,
    ambiguous_root,
    comparable,
    decode_uri,
    folder,
    is_local,
    join,
    local_folder,
    local_path,
    scheme,
    store_problem,
)
from spark_flow._store_settings import (
    CLIENTS,
    S3_SCHEMES,
    Client,
    S3Settings,
    StorageSettings,
    adopt_environment,
    client_options,
    configure,
    credentials_problem,
    s3_problem,
    s3_settings,
    store_environment,
)
from spark_flow.errors import InvalidArgumentError, StorageError, UnknownValueError

if TYPE_CHECKING:
    from obstore.store import ObjectStore
    from pyarrow import NativeFile
    from pyarrow.fs import FileSystem

__all__ = [
    "STAGING_DIR",
    "Client",
    "StorageSettings",
    "absolute",
    "adopt_environment",
    "ambiguous_root",
    "check_reachable",
    "comparable",
    "configure",
    "decode_uri",
    "delete_files",
    "exists",
    "filesystem",
    "folder",
    "is_local",
    "join",
    "list_files",
    "local_folder",
    "location_problem",
    "object_store",
    "open_input_file",
    "options",
    "read_bytes",
    "read_text",
    "scheme",
    "store_environment",
    "store_error",
    "write_text_atomically",
]

log = logging.getLogger(__name__)

STAGING_DIR = "_spark_flow_staging"
"""Where writers stage files inside an output before publishing them; readers skip `_` folders."""

_T = TypeVar("_T")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

# Hadoop's names for S3, which pyarrow.fs knows as s3 only.
_PYARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}
# Buckets found reachable with the settings of the time: checked once per process.
_reached: set[tuple[str, S3Settings]] = set()


def object_store(path: str) -> ObjectStore:
    """The obstore client of the store folder `path`, its paths relative to it.

    For what one upload cannot do alone: create an object only if absent, replace it only if
    unchanged since read (its ETag), as runner leases, record tables and file outputs'
    manifests do. Reached with the same settings as pyarrow.fs and deltalake (`options`).

    Raises:
        InvalidArgumentError: `path` is local (a rename or hard link does that work there).
        StorageError: no client for its scheme, or the client cannot be configured.
    """
    if is_local(path):
        raise InvalidArgumentError(
            "path", f"expected an object store URI, got the local path {path!r}", "Pass a URI."
        )
    from obstore.exceptions import BaseError
    from obstore.store import from_url

    _require_store(path)
    try:
        return from_url(folder(path), **options(path, client="obstore"))
    except BaseError as exc:
        raise StorageError(path, "open the store of", str(exc).splitlines()[0]) from exc


def exists(path: str) -> bool:
    """True when a file or folder is at `path` (on a store: an object or a prefix of some)."""
    if is_local(path):
        return os.path.exists(local_path(path))
    from pyarrow.fs import FileType

    store, location = filesystem(path)
    info = _attempt(path, "look up", lambda: store.get_file_info(location))
    return bool(info.type != FileType.NotFound)


def list_files(path: str, *, recursive: bool = False) -> list[str]:
    """The files below the folder `path`, as `/`-separated paths relative to it; [] if none.

    One listing (a directory walk locally, a prefix listing on a store), e.g. of a Delta log,
    or of a table on a store whose files are checked without a request per file.
    """
    if is_local(path):
        root = local_path(path)
        found = []
        # os.walk reads file types from the directory entries: no stat per file.
        for folder, folders, files in os.walk(root):
            relative = os.path.relpath(folder, root).replace(os.sep, "/")
            found += files if relative == "." else [f"{relative}/{name}" for name in files]
            if not recursive:
                folders.clear()
        return sorted(found)
    from pyarrow.fs import FileSelector, FileType

    store, location = filesystem(path)
    selector = FileSelector(location, allow_not_found=True, recursive=recursive)
    infos = _attempt(path, "list", lambda: store.get_file_info(selector))
    prefix = location.rstrip("/") + "/"
    return sorted(i.path[len(prefix) :] for i in infos if i.type == FileType.File)


def read_text(path: str) -> str | None:
    """The text of the file at `path` (a marker, a manifest, a commit), or None when there is none.

    Callers check the store once per operation (`check_reachable`), not per file read.
    """
    data = read_bytes(path)
    return None if data is None else data.decode()


def read_bytes(path: str) -> bytes | None:
    """The bytes of the file at `path`, or None when there is none; on a store by one GET."""
    if is_local(path):
        try:
            return Path(local_path(path)).read_bytes()
        except FileNotFoundError:
            return None
    import obstore
    from obstore.exceptions import BaseError

    _require_store(path)
    # The key whole, below the bucket: from_url would percent-decode a longer prefix.
    bucket, _, key = path.split("://", 1)[1].partition("/")
    if not key.strip("/"):
        return None  # a bucket is no file
    try:
        return bytes(obstore.get(object_store(f"{scheme(path)}://{bucket}"), key).bytes())
    except FileNotFoundError:  # obstore's NotFoundError is one
        return None
    except BaseError as exc:
        raise StorageError(path, "read", str(exc).splitlines()[0]) from exc


def open_input_file(path: str) -> NativeFile:
    """The file at `path` opened for random access (Parquet readers seek to the footer).

    A store URI is URI-encoded, as Delta logs write them (`decode_uri`). A store's object is
    read whole by one GET, where pyarrow's store file sends a HEAD and a GET per range read
    (footer, column chunks): the callers read every column anyway."""
    from pyarrow import BufferReader, OSFile

    if is_local(path):
        return _attempt(path, "open", lambda: OSFile(local_path(path)))
    data = read_bytes(decode_uri(path))
    if data is None:
        raise StorageError(path, "open", "there is no such object")
    return BufferReader(data)


def write_text_atomically(path: str, text: str) -> None:
    """Write `text` to `path` so that readers see the old content or the new, never a part.

    Locally a temporary file beside it is renamed over it; on a store one upload writes it.
    """
    if not is_local(path):
        store, location = filesystem(path)

        def upload() -> None:
            with store.open_output_stream(location) as out:
                out.write(text.encode())

        _attempt(path, "write", upload)
        return
    target = Path(local_path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _written_beside(target, text) as temporary:
        os.replace(temporary, target)


def create_if_absent(folder: str, name: str, text: str) -> bool:
    """Create `folder/name` holding `text` unless it exists (one conditional PUT; locally a
    hard link, which fails on an existing name); True if this call created it. Readers see
    the whole text or no file.

    Raises:
        StorageError: the store refused the PUT for another reason than an existing object.
    """
    if is_local(folder):
        target = Path(local_path(join(folder, name)))
        try:
            with _written_beside(target, text) as temporary:
                os.link(temporary, target)
        except FileExistsError:
            return False
        return True
    import obstore
    from obstore.exceptions import AlreadyExistsError, BaseError

    try:
        obstore.put(object_store(folder), name, text.encode(), mode="create")
    except AlreadyExistsError:
        return False
    except BaseError as exc:
        raise StorageError(join(folder, name), "create", str(exc).strip()) from exc
    return True


@contextmanager
def _written_beside(target: Path, text: str) -> Iterator[str]:
    """A temporary file beside `target` holding `text`, for the block to publish in one step."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        yield temporary
    finally:
        Path(temporary).unlink(missing_ok=True)


def options(path: str, *, client: Client = "deltalake") -> dict[str, Any]:
    """How `client` reaches the store of `path`: the configured `[storage]` table and the
    environment, in that client's own terms (environment variables win over the profile).

    - `deltalake`: its `storage_options`, e.g. `DeltaTable(path, storage_options=...)`;
    - `pyarrow`: keyword arguments of `pyarrow.fs.S3FileSystem`;
    - `obstore`: keyword arguments of `obstore.store.from_url` (`config`, `client_options`).

    Only S3 and S3-compatible stores (`s3://`, `s3a://`) take settings; other schemes give an
    empty mapping and their clients read their own variables (`GOOGLE_*`, `AZURE_*`). Local
    paths give an empty mapping too.

    Raises:
        UnknownValueError: an unknown `client`.

    Example:
        >>> DeltaTable("s3://warehouse/devices", storage_options=options("s3://warehouse"))
    """
    if client not in CLIENTS:
        raise UnknownValueError("client", client, CLIENTS)
    return client_options(scheme(path), client)


def check_reachable(path: str) -> None:
    """Fail fast, before any Spark job, where the store of `path` cannot be used.

    Checks the URI (a known scheme, a bucket, nothing clients read as other keys: `%XX`, `#`,
    `?`, `//` ...), the credentials' presence and, on S3, that the bucket exists (one request,
    once per bucket and settings in a process). Local paths pass.

    Raises:
        StorageError: an unsupported scheme, no bucket, no credentials, a plain-http endpoint
            without `allow_http`, an unknown bucket, or an unreachable endpoint.
    """
    kind = scheme(path)
    if kind == "file":
        return
    problem = location_problem(path)
    if problem is None and kind not in S3_SCHEMES:
        problem = credentials_problem(kind)
    if problem is not None:
        raise StorageError(path, "reach", problem)
    if kind not in S3_SCHEMES:
        return
    settings = s3_settings()
    bucket = urlparse(path).netloc
    if (bucket, settings) in _reached:
        return
    problem = s3_problem(settings)
    if problem is not None:
        raise StorageError(path, "reach the bucket of", problem)
    from pyarrow.fs import FileType

    store, _ = filesystem(path)
    try:
        info = store.get_file_info(bucket)
    except OSError as exc:
        if "ACCESS_DENIED" not in str(exc):
            raise store_error(path, "reach the bucket of", exc) from exc
        # Asking for a bucket needs s3:ListBucket on all of it, which a role scoped to a prefix
        # lacks; a bucket that is not there answers 404, and the work itself (a GET, a listing
        # of the prefix) says whether these credentials are refused, and why.
        log.debug("could not ask whether bucket %r exists: %s", bucket, exc)
        _reached.add((bucket, settings))  # asked once: the work itself says the rest
        return
    if info.type == FileType.NotFound:
        where = settings.endpoint or "AWS"
        raise StorageError(
            path, "reach the bucket of", f"bucket {bucket!r} does not exist at {where}"
        )
    _reached.add((bucket, settings))


def location_problem(path: str) -> str | None:
    """Why no store client can take `path` as a table's or an output's location, or None.

    No request is made, so it suits checks of a job's arguments: a store URI without a bucket
    (`s3://`), a scheme no client reaches (`hdfs://`), or what clients read as other keys
    (`%XX`, `#`, `?`, `//`, a trailing space: `_paths.ambiguous_root`). Local paths have none.

    Example:
        >>> location_problem("s3://")
        'the URI names no bucket: write s3://<bucket>/<folder>, e.g. s3://warehouse/devices'
    """
    if is_local(path):
        return None
    return store_problem(path) or ambiguous_root(path)


def _require_store(path: str) -> None:
    """Refuse a store URI no client can open (`s3://` without a bucket, `hdfs://`) by name."""
    problem = store_problem(path)
    if problem is not None:
        raise StorageError(path, "open the store of", problem)


def filesystem(path: str, settings: Mapping[str, Any] | None = None) -> tuple[FileSystem, str]:
    """The pyarrow filesystem of `path` and the location of `path` inside it, for code that
    lists, reads or writes many files there (executors included: it pickles with its options).

    Args:
        path: a local path, a `file:` URI or a store URI (`s3://bucket/table`).
        settings: `options(path, client="pyarrow")` as resolved elsewhere, e.g. on the driver
            for a Python worker whose environment lacks the driver's; default: resolved here.

    Raises:
        StorageError: the store cannot be opened from this process.
    """
    from pyarrow.fs import FileSystem, LocalFileSystem, S3FileSystem

    if is_local(path):
        return LocalFileSystem(), local_path(path)
    _require_store(path)
    kind = scheme(path)
    alias = _PYARROW_SCHEMES.get(kind, kind)
    uri = alias + path[len(urlparse(path).scheme) :]
    if alias != "s3":
        problem = None if settings is not None else credentials_problem(kind)
        if problem is not None:  # else pyarrow would wait minutes on a metadata server
            raise StorageError(path, "open the store of", problem)
        opened: tuple[FileSystem, str] = _attempt(
            path, "open the store of", lambda: FileSystem.from_uri(uri)
        )
        return opened
    arguments = options(path, client="pyarrow") if settings is None else dict(settings)
    store = _attempt(path, "open the store of", lambda: S3FileSystem(**arguments))
    return store, uri[len("s3://") :].rstrip("/")


def delete_files(root: str, relative_paths: Iterable[str]) -> None:
    """Remove the files at `relative_paths` below `root`, ignoring those already gone.

    Best effort by design: it cleans up after a failed or lost write, whose error is the one
    to report.
    """
    relative = list(relative_paths)
    if is_local(root):
        for name in relative:
            Path(join(root, name)).unlink(missing_ok=True)
        return
    if not relative:
        return
    store, location = filesystem(root)
    for name in relative:
        try:
            store.delete_file(f"{location}/{name}")
        except OSError as exc:
            log.warning("could not remove %s/%s: %s", root, name, exc)


def store_error(path: str, action: str, failure: BaseException) -> StorageError:
    """A store client's `failure` to `action` `path` as our error, its message on one line.

    deltalake chains its causes over indented lines, each behind an arrow in terminal colours,
    which a one-line JSON report or a log line would carry as escape codes.
    """
    lines = (
        _COLOUR.sub("", line).strip().lstrip("↳").strip() for line in str(failure).splitlines()
    )
    return StorageError(path, action, ": ".join(line for line in lines if line))


def _attempt(path: str, action: str, call: Callable[[], _T]) -> _T:
    """`call()`, with the store client's failures (credentials, network, scheme) as StorageError."""
    from pyarrow import ArrowException

    try:
        return call()
    except (OSError, ArrowException) as exc:
        raise store_error(path, action, exc) from exc
