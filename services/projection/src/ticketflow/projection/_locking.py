"""The lock that makes a rebuild's file swap atomic for every reader and writer of the read model.

Every call holds a shared ``flock`` on ``<db>.lock`` while its connection is open; the swap holds
it exclusively. So no connection ever spans a replace: after the swap every call opens the new
file, and the old file's WAL side files can be removed safely.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

__all__ = ["SwapLock", "fsync_dir"]


class SwapLock:
    """Shared for every call, exclusive for the swap, fair to the swap.

    flock alone would let a steady stream of overlapping shared holders (a busy read API) starve
    the swap forever. So everyone first passes a turnstile (``<db>.gate``, exclusive and held only
    for a moment by callers). The swap keeps holding the gate while it waits for the current
    holders to leave. One descriptor per holder: flock locks belong to the open file description,
    so threads must not share one (an unlock by one would release the others).

    ``enabled=False`` is for a private file nobody else opens (rebuild's fresh database).
    """

    def __init__(self, db_path: Path, *, enabled: bool = True) -> None:
        self.lock_path = db_path.with_name(db_path.name + ".lock")
        self.gate_path = db_path.with_name(db_path.name + ".gate")
        self.enabled = enabled

    def shared(self) -> AbstractContextManager[None]:
        """Held by every read and write while its connection is open."""
        return self._hold(exclusive=False)

    def exclusive(self) -> AbstractContextManager[None]:
        """Held by the swap: no connection to the file is open, new ones wait."""
        return self._hold(exclusive=True)

    @contextmanager
    def _hold(self, *, exclusive: bool) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        gate = os.open(self.gate_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            main = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(gate, fcntl.LOCK_EX)
                fcntl.flock(main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                if not exclusive:
                    fcntl.flock(gate, fcntl.LOCK_UN)
                yield
            finally:
                os.close(main)  # closing releases the lock
        finally:
            os.close(gate)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (the directory entry, not only the file's data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
