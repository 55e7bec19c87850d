"""The launcher's files in the data dir: its lock (one launcher per data dir), its state file
(the children it runs, see ``statefile.py``) and the dev approver token.

The data dir is private: the launcher creates it 0700 and every file in it is 0600 (the children
run with umask 077, see ``stack.py``). A data dir or a ``temporal.db`` that an older version left
readable by others is tightened at start, one line each (``secure_data_dir``).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ticketflow.runtime.files import private_dir, private_file, private_sqlite

from .config import UsageError

__all__ = [
    "LOCK_FILE",
    "STATE_FILE",
    "TEMPORAL_DB",
    "TOKEN_FILE",
    "dev_approver_token",
    "lock_data_dir",
    "secure_data_dir",
]

LOCK_FILE = "ticketflow-up.lock"
STATE_FILE = "ticketflow-up.state.json"
TOKEN_FILE = "approver-token"
TEMPORAL_DB = "temporal.db"  # the dev server's SQLite file


def secure_data_dir(data_dir: Path, report: Callable[[str], None]) -> None:
    """Create the data dir 0700, or tighten an existing one, and an older ``temporal.db`` (and its
    SQLite side files) to 0600; ``report`` gets one line per change. The dev server creates a new
    ``temporal.db`` itself, 0600 under the umask it is started with."""
    private_dir(data_dir, report=report)
    private_sqlite(data_dir / TEMPORAL_DB, create=False, report=report)


def lock_data_dir(data_dir: Path) -> IO[str]:
    """One `ticketflow up` per data dir (two dev servers on one SQLite file would corrupt it).

    The lock is held as long as the returned file stays open; it holds the launcher's pid, which
    a refused second launcher names.
    """
    private_dir(data_dir, tighten=False)
    private_file(data_dir / LOCK_FILE)
    handle = open(data_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise UsageError(
            f"another `ticketflow up` (pid {holder}) is using the data dir {data_dir}: stop it, "
            "or give this one its own --data-dir (or TICKETFLOW_DATA_DIR) and ports"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def dev_approver_token(data_dir: Path) -> tuple[str, bool]:
    """The dev approver token from ``<data dir>/approver-token``, made on first use (mode 0600).

    Returns (token, created).
    """
    path = data_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        token = path.read_text().strip()
        if token:
            return token, False
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True
