"""The run lock: a lease per job (or key, or date), safe across processes and hosts sharing it.

Locks live in the run-state store's `locks/` folder: on a local or mounted filesystem for the
processes of one host (or of the hosts mounting it), on an object store for drivers anywhere that
reach the bucket. The lease, not the run history, decides who may run: a holder that stalls past
its lease loses the lock to the next contender.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from spark_flow._common import pid_alive
from spark_flow.errors import ConcurrentRunError, InvalidArgumentError, StorageError
from spark_flow.runners._lease_store import Lease, lease_store
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
    """A lease lock shared by processes, and hosts, that share its folder: at most one holder.

    The folder picks where the lease lives (`_lease_store`): locally each acquisition creates the
    next numbered epoch file with an atomic hard link; on an object store (`s3://` ...) the lease
    is one object created with put-if-absent and replaced only with a put conditional on the
    ETag read. Either way, of two contenders exactly one gets it. The holder renews its lease
    from a background thread and releases it in `release()`. A lock whose lease expired, or
    whose holder process on this host is gone, is taken over by the next contender, which logs
    it. A holder whose renewal finds the lease changed has lost the lock (it stalled past its
    lease) and says so.

    Acquiring, renewing, taking over and releasing all keep one invariant (the current lease
    names the holder), so they stay together in this one, longer, class.

    Args:
        folder: the lock's folder (one per job, key or date): a local path or a store URI.
        job: the job's name, for messages and the holder's lease.
        key: the key or date the lock is for, if not the whole job.
        run_id: the holder's run id (default: a new one).
        lease_seconds: how long the lock holds without renewal.
        renew: renew the lease from a background thread while held.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        job: str,
        key: str | None = None,
        run_id: str | None = None,
        lease_seconds: float = 60.0,
        renew: bool = True,
    ) -> None:
        check_lease(lease_seconds)
        self.job = job
        self.key = key
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.lost = False
        self._store = lease_store(folder)
        self._renew = renew
        self._info: dict[str, Any] = {}
        self._version: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        # One renewal at a time: two racing with one version would find each other's new one
        # and take it for a takeover.
        self._renewing = threading.Lock()
        self._renewed_at = 0.0  # time.monotonic() of the last claim or renewal

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._version is not None

    def acquire(self, *, wait: float | None = None, poll: float = 0.5) -> None:
        """Take the lock, waiting up to `wait` seconds for its holder (None: do not wait).

        Raises:
            ConcurrentRunError: another live run holds it (after `wait`, if given).
            StorageError: the lease's store cannot be read or written.
        """
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
        """Give the lock up (no-op if not held); a lease another run took over stays its own.

        Never raises: it runs when the run has ended and been recorded, and a store that fails
        now must not turn that run into an error. A lease not released expires by itself.
        """
        if self._version is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        version, self._version = self._version, None
        try:
            released = self._store.release(self._info, version)
        except StorageError as exc:
            log.warning(
                "%s: run %s could not release its lock, which the next run takes over once its "
                "lease has expired: %s",
                self.job, self.run_id, exc,
            )  # fmt: skip
            return
        if not released:
            log.warning("%s: run %s had lost its lock before releasing it", self.job, self.run_id)

    def renew(self) -> bool:
        """Extend the lease; False (and logged) when another run has taken the lock over.

        Raises:
            StorageError: the lease's store cannot be read or written (the lease stands).
        """
        with self._renewing:
            return self._renew_lease()

    def confirm(self) -> bool:
        """Whether this run holds the lock still, asked of the store (by renewing the lease).

        A store that cannot be reached proves nothing either way: the lock counts as held
        while the last renewal is younger than a lease, since no other run could have taken
        it over before the lease ran out.
        """
        try:
            return self.renew()
        except StorageError as exc:
            age = time.monotonic() - self._renewed_at
            log.warning(
                "%s: run %s could not confirm it still holds its lock (renewed %.1fs ago, "
                "lease %.1fs): %s", self.job, self.run_id, age, self.lease_seconds, exc,
            )  # fmt: skip
            return not self.lost and age < self.lease_seconds

    def _renew_lease(self) -> bool:
        if self._version is None:
            return False
        version = self._store.renew(self._info, self._version)
        if version is None and self._store.current() is None:
            # The lease is gone, not taken: its folder or object was deleted (a state clean-up).
            # Claimed again, it keeps other runs out; lost only if one claimed it first.
            log.warning(
                "%s: run %s found its lock's lease deleted while it ran; taking it again",
                self.job, self.run_id,
            )  # fmt: skip
            version = self._store.claim(self._info, over=None)
        if version is None:
            self.lost = True
            log.error(
                "%s: run %s lost its lock to a newer holder: its lease expired while it ran, "
                "so another run may be running the same work",
                self.job, self.run_id,
            )  # fmt: skip
            return False
        self._version, self._renewed_at = version, time.monotonic()
        return True

    def holder(self) -> LockHolder | None:
        """The current holder, or None when the lock is free."""
        lease = self._store.current()
        return None if lease is None else self._live_holder(lease)

    def _try_acquire(self) -> LockHolder | None:
        lease = self._store.current()
        if lease is not None:
            holder = self._live_holder(lease)
            if holder is not None:
                return holder
        info = {
            "job": self.job,
            "key": self.key,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": now().isoformat(),
            "lease_seconds": self.lease_seconds,
        }
        version = self._store.claim(info, over=lease)
        if version is None:  # another contender changed the lease since we read it
            return self.holder() or self._try_acquire()
        self._info, self._version = info, version
        self._renewed_at = time.monotonic()
        self._stop.clear()
        if self._renew:
            self._renewer = threading.Thread(
                target=self._keep_renewing, name=f"lease-{self.job}", daemon=True
            )
            self._renewer.start()
        return None

    def _live_holder(self, lease: Lease) -> LockHolder | None:
        """The holder of `lease` if it still counts; logs a takeover when it does not."""
        if lease.released:
            return None
        holder = LockHolder(
            run_id=lease.run_id,
            host=lease.host,
            pid=lease.pid,
            since=lease.since,
            lease_until=lease.lease_until,
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

    def _keep_renewing(self) -> None:
        """Renew every third of a lease until released or lost. A store that fails a renewal
        (a network blip, a throttled request) is tried again sooner, not given up on: a thread
        that died here would let the lease lapse while the run goes on."""
        wait = self.lease_seconds / 3
        while not self._stop.wait(wait):
            try:
                if not self.renew():
                    return
                wait = self.lease_seconds / 3
            except StorageError as exc:
                wait = self.lease_seconds / 10
                log.warning(
                    "%s: run %s could not renew its lock, trying again in %.1fs: %s",
                    self.job, self.run_id, wait, exc,
                )  # fmt: skip
