"""The run lock: a lease file per job (or key, or date), safe across processes on one filesystem.

Locks live in the run-state store's `locks/` folder. The lease, not the run history, decides who
may run: a holder that stalls past its lease loses the lock to the next contender.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from spark_flow._common import pid_alive
from spark_flow.errors import ConcurrentRunError, InvalidArgumentError
from spark_flow.runners.state import now

__all__ = ["LockHolder", "RunLock", "check_lease"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, since when, and until when its lease runs without renewal."""

    run_id: str
    host: str
    pid: int
    since: datetime
    lease_until: datetime

    def error(self, job: str, key: str | None, waited: float | None = None) -> ConcurrentRunError:
        holder = {
            "run_id": self.run_id,
            "host": self.host,
            "pid": self.pid,
            "since": self.since.isoformat(timespec="seconds"),
            "lease_until": self.lease_until.isoformat(timespec="seconds"),
        }
        return ConcurrentRunError(job, key, holder, waited)


def check_lease(lease_seconds: float) -> None:
    """Refuse a lease that could never be held (InvalidArgumentError)."""
    if lease_seconds <= 0:
        raise InvalidArgumentError(
            "lease_seconds", f"must be positive, got {lease_seconds}", "Use e.g. 60."
        )


class RunLock:
    """A lease lock shared by processes on one filesystem: at most one holder per job (and key).

    Each acquisition creates the next numbered epoch file with an atomic hard link, so of two
    contenders exactly one gets it. The holder renews its lease by touching its file from a
    background thread and releases it in `release()`. A lock whose lease expired, or whose holder
    process on this host is gone, is taken over by the next contender, which logs it. A holder
    that finds a newer epoch has lost the lock (it stalled past its lease) and says so.

    Acquiring, renewing, taking over and releasing all keep one invariant (the newest epoch file
    names the holder), so they stay together in this one, longer, class.

    Args:
        folder: the lock's folder (one per job, key or date).
        job: the job's name, for messages and the holder's file.
        key: the key or date the lock is for, if not the whole job.
        run_id: the holder's run id (default: a new one).
        lease_seconds: how long the lock holds without renewal.
        renew: renew the lease from a background thread while held.
    """

    def __init__(
        self,
        folder: Path,
        *,
        job: str,
        key: str | None = None,
        run_id: str | None = None,
        lease_seconds: float = 60.0,
        renew: bool = True,
    ) -> None:
        check_lease(lease_seconds)
        self.folder = Path(folder)
        self.job = job
        self.key = key
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.lost = False
        self._renew = renew
        self._epoch: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._epoch is not None

    def acquire(self, *, wait: float | None = None, poll: float = 0.5) -> None:
        """Take the lock, waiting up to `wait` seconds for its holder (None: do not wait).

        Raises:
            ConcurrentRunError: another live run holds it (after `wait`, if given).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        while True:
            holder = self._try_acquire()
            if holder is None:
                return
            waited = time.monotonic() - started
            if wait is None or waited >= wait:
                raise holder.error(self.job, self.key, None if wait is None else waited)
            log.info("%s: waiting for run %s to release the lock", self.job, holder.run_id)
            time.sleep(min(poll, max(wait - waited, 0.01)))

    def release(self) -> None:
        """Give the lock up (no-op if not held); older epochs are removed."""
        if self._epoch is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        epoch, self._epoch = self._epoch, None
        self._path(epoch, ".released").touch()
        for old in self.folder.iterdir():
            if old.stem.isdigit() and int(old.stem) < epoch:
                old.unlink(missing_ok=True)

    def renew(self) -> bool:
        """Extend the lease; False (and logged) when another run has taken the lock over."""
        if self._epoch is None:
            return False
        top = self._top()
        if top != self._epoch:
            self.lost = True
            log.error(
                "%s: run %s lost its lock to a newer holder (epoch %s > %s): its lease expired "
                "while it ran, so another run may be running the same work",
                self.job, self.run_id, top, self._epoch,
            )  # fmt: skip
            return False
        os.utime(self._path(self._epoch))
        return True

    def holder(self) -> LockHolder | None:
        """The current holder, or None when the lock is free."""
        top = self._top()
        return None if top is None else self._live_holder(top)

    def _try_acquire(self) -> LockHolder | None:
        top = self._top()
        if top is not None:
            holder = self._live_holder(top)
            if holder is not None:
                return holder
        epoch = (top or 0) + 1
        if not self._create(epoch):
            return self.holder() or self._try_acquire()
        self._epoch = epoch
        self._stop.clear()
        if self._renew:
            self._renewer = threading.Thread(
                target=self._keep_renewing, name=f"lease-{self.job}", daemon=True
            )
            self._renewer.start()
        return None

    def _live_holder(self, epoch: int) -> LockHolder | None:
        """The holder of `epoch` if it still counts; logs a takeover when it does not."""
        path = self._path(epoch)
        if self._path(epoch, ".released").exists():
            return None
        try:
            info = json.loads(path.read_text())
            touched = path.stat().st_mtime
        except FileNotFoundError:
            return None
        holder = LockHolder(
            run_id=info["run_id"],
            host=info["host"],
            pid=info["pid"],
            since=datetime.fromisoformat(info["since"]),
            lease_until=datetime.fromtimestamp(touched + info["lease_seconds"], timezone.utc),
        )
        gone = holder.host == socket.gethostname() and not pid_alive(holder.pid)
        if not gone and holder.lease_until > now():
            return holder
        log.warning(
            "%s: taking the lock over from run %s (host %s, pid %s, since %s): %s",
            self.job, holder.run_id, holder.host, holder.pid, holder.since.isoformat(),
            "its process is gone" if gone else f"its lease expired at {holder.lease_until}",
        )  # fmt: skip
        return None

    def _create(self, epoch: int) -> bool:
        """Create epoch file `epoch` with its content in one step; False if it exists."""
        info = {
            "job": self.job,
            "key": self.key,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now().isoformat(),
            "lease_seconds": self.lease_seconds,
        }
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(info, out)
            os.link(temporary, self._path(epoch))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            if not self.renew():
                return

    def _top(self) -> int | None:
        epochs = [int(p.stem) for p in self.folder.glob("*.lock") if p.stem.isdigit()]
        return max(epochs, default=None)

    def _path(self, epoch: int, suffix: str = ".lock") -> Path:
        return self.folder / f"{epoch:012d}{suffix}"
