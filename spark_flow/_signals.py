"""How a `spark-flow` command stops when it is told to: SIGTERM as Ctrl-C."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["sigterm_as_interrupt"]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within, SIGTERM raises KeyboardInterrupt, as Ctrl-C does.

    A scheduler stops a command with SIGTERM (Airflow's on_kill, Kubernetes, `kill`). By
    default the process vanishes at once: its run stays `running` in the history, its locks
    held until their lease runs out, and a backfill's spark-submit processes run on. As an
    interrupt, the run is recorded failed, its locks released, the running runs cancelled.
    Signals reach the main thread only: elsewhere this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
