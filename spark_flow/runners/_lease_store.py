"""Where a runner's lease lives: numbered files on a local disk, one object on an object store.

`RunLock` keeps the protocol (when a lease still counts, takeovers, renewal, losing); a lease
store only reads the current lease and changes it atomically, each change conditional on the
lease being the one read:

- `LocalLeases` (plain paths, mounted volumes): each holder gets the next numbered epoch file,
  created whole with a hard link that fails when the file exists; the file's mtime is the last
  renewal, a `.released` file beside it says it was given up.
- `ObjectLeases` (`s3://`, `gs://`, `az://` ...): one object, `lease.json`, created with
  put-if-absent and afterwards replaced only with a conditional put on the ETag that was read,
  so of two contenders the store lets exactly one through. No rename, link or mtime needed.

`lease_store(folder)` picks one by the folder's scheme.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from spark_flow import storage
from spark_flow.errors import StorageError
from spark_flow.runners.state import now

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = ["Lease", "LeaseStore", "LocalLeases", "ObjectLeases", "lease_store"]

LEASE_OBJECT = "lease.json"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Lease:
    """The lease a store holds now: who took it, when it was last renewed, its version.

    `version` is opaque to the lock (an epoch number, an ETag): a change is made only while
    the lease is still at the version its maker read.
    """

    run_id: str
    host: str
    pid: int
    since: datetime
    renewed_at: datetime
    lease_seconds: float
    released: bool
    version: str

    @property
    def lease_until(self) -> datetime:
        return self.renewed_at + timedelta(seconds=self.lease_seconds)


class LeaseStore(Protocol):
    """Atomic changes of one lock's lease; `info` is the holder's description (a JSON object)."""

    def current(self) -> Lease | None:
        """The latest lease, released or not; None when there never was one."""

    def claim(self, info: Mapping[str, Any], over: Lease | None) -> str | None:
        """Take the lock over `over` (None: it never had a lease); the new version, or None
        when another contender changed the lease first."""

    def renew(self, info: Mapping[str, Any], version: str) -> str | None:
        """Move the lease on; its new version, or None when it is no longer at `version`."""

    def release(self, info: Mapping[str, Any], version: str) -> bool:
        """Give the lease up if it is still at `version`; False when someone took it over."""


def lease_store(folder: str | Path) -> LeaseStore:
    """The lease store of a lock folder: local files, or one object on an object store."""
    where = str(folder)
    return (
        LocalLeases(Path(storage.folder(where))) if storage.is_local(where) else ObjectLeases(where)
    )


def _lease(info: Mapping[str, Any], renewed_at: datetime, released: bool, version: str) -> Lease:
    return Lease(
        run_id=info["run_id"],
        host=info["host"],
        pid=info["pid"],
        since=datetime.fromisoformat(info["since"]),
        renewed_at=renewed_at,
        lease_seconds=info["lease_seconds"],
        released=released,
        version=version,
    )


class LocalLeases:
    """Leases as numbered epoch files in a local folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def current(self) -> Lease | None:
        while (epoch := self._top()) is not None:
            path = self._path(epoch)
            try:
                info = json.loads(path.read_text())
                touched = path.stat().st_mtime
            except FileNotFoundError:
                # A newer epoch was released meanwhile, which cleans up the older ones: the
                # lock has a lease still, the newer one. None here would let a claim think the
                # lock never had one.
                continue
            renewed_at = datetime.fromtimestamp(touched, timezone.utc)
            return _lease(info, renewed_at, self._path(epoch, ".released").exists(), str(epoch))
        return None

    def claim(self, info: Mapping[str, Any], over: Lease | None) -> str | None:
        # Conditional on the lease read: the epoch after it, or the first one when there was
        # none. Never the epoch after the top found now: two contenders that both saw no lease
        # would then create epochs 1 and 2, and both hold the lock.
        epoch = 1 if over is None else int(over.version) + 1
        with self._failing("take a lock in"):
            self.folder.mkdir(parents=True, exist_ok=True)
            return str(epoch) if self._create(epoch, info) else None

    def renew(self, info: Mapping[str, Any], version: str) -> str | None:
        # The run id too: epochs count again from 1 in a folder deleted and made anew, so the
        # same number may be another run's lease.
        lease = self.current()
        if lease is None or lease.version != version or lease.run_id != info.get("run_id"):
            return None
        with self._failing("renew a lease in"):
            os.utime(self._path(int(version)))
        return version

    def release(self, info: Mapping[str, Any], version: str) -> bool:
        epoch = int(version)
        with self._failing("release a lock in"):
            self._path(epoch, ".released").touch()
            for old in self.folder.iterdir():
                if old.stem.isdigit() and int(old.stem) < epoch:
                    old.unlink(missing_ok=True)
        return self._top() == epoch

    @contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        """The filesystem's refusals (a file where a folder goes, permissions, a full disk) as
        StorageError, naming the lock's folder, instead of a bare OSError."""
        try:
            yield
        except OSError as exc:
            raise storage.store_error(str(self.folder), action, exc) from exc

    def _create(self, epoch: int, info: Mapping[str, Any]) -> bool:
        """Create epoch file `epoch` with its content in one step; False if it exists."""
        return storage.create_if_absent(str(self.folder), self._path(epoch).name, json.dumps(info))

    def _top(self) -> int | None:
        """The newest epoch; None when there is none, or no folder (no lock was ever taken, or
        its folder was deleted). A folder that cannot be listed is a StorageError, not "no
        lease": a holder would take that for a takeover, a contender for a free lock."""
        try:
            with os.scandir(self.folder) as entries:
                names = [entry.name for entry in entries]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise storage.store_error(str(self.folder), "read the lease in", exc) from exc
        epochs = [
            int(name[:-5]) for name in names if name.endswith(".lock") and name[:-5].isdigit()
        ]
        return max(epochs, default=None)

    def _path(self, epoch: int, suffix: str = ".lock") -> Path:
        return self.folder / f"{epoch:012d}{suffix}"


class ObjectLeases:
    """A lease as one object on an object store, changed only by conditional puts.

    Every write carries a fresh `renewed_at` and a nonce, so its content, and with it the ETag
    (an MD5 of the content on S3), differs from every earlier version. Release overwrites the
    lease with a released one instead of deleting it: object stores' clients have no delete
    conditional on an ETag, and a plain delete could remove a lease another run just took over.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._store: ObjectStore | None = None

    def current(self) -> Lease | None:
        import obstore

        try:
            got = self._call("read", lambda store: obstore.get(store, LEASE_OBJECT))
        except FileNotFoundError:
            return None
        content = json.loads(bytes(got.bytes()))
        renewed_at = datetime.fromisoformat(content["renewed_at"])
        return _lease(content, renewed_at, bool(content.get("released")), self._version(got.meta))

    def claim(self, info: Mapping[str, Any], over: Lease | None) -> str | None:
        return self._put(info, None if over is None else over.version)

    def renew(self, info: Mapping[str, Any], version: str) -> str | None:
        return self._put(info, version)

    def release(self, info: Mapping[str, Any], version: str) -> bool:
        return self._put(info, version, released=True) is not None

    def _put(
        self, info: Mapping[str, Any], version: str | None, *, released: bool = False
    ) -> str | None:
        """Write the lease if it is still at `version` (None: if there is none); its new one."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        content = {
            **info,
            "renewed_at": now().isoformat(),
            "released": released,
            "nonce": uuid.uuid4().hex,
        }
        body = json.dumps(content).encode()
        mode: Any = "create" if version is None else json.loads(version)
        try:
            put = self._call(
                "write", lambda store: obstore.put(store, LEASE_OBJECT, body, mode=mode)
            )
        except (AlreadyExistsError, PreconditionError):
            return None
        return self._version(put)

    def _call(self, action: str, call: Callable[[ObjectStore], _T]) -> _T:
        """`call(store)`, with the store client's failures (not its answers) as StorageError."""
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        if self._store is None:
            # A bucket that is not there answers a lease's PUT "not found": said here instead.
            storage.check_reachable(self.folder)
            self._store = storage.object_store(self.folder)
        try:
            return call(self._store)
        except (AlreadyExistsError, PreconditionError, FileNotFoundError):
            raise
        except BaseError as exc:
            where = storage.join(self.folder, LEASE_OBJECT)
            raise StorageError(where, action, str(exc).splitlines()[0]) from exc

    def _version(self, meta: Mapping[str, Any]) -> str:
        """The version token of the lease object: its ETag and, where the store has one, its
        version id (S3 and Azure condition an update on the ETag, GCS on the generation, which
        obstore calls `version`), as obstore's UpdateVersion takes them.

        Raises:
            StorageError: the store names no version, so no update could be conditional.
        """
        fields = {key: meta.get(key) for key in ("e_tag", "version")}
        token = {key: value for key, value in fields.items() if value is not None}
        if not token:
            where = storage.join(self.folder, LEASE_OBJECT)
            problem = "the store returned neither an ETag nor a version"
            raise StorageError(where, "condition an update of", problem)
        return json.dumps(token)
