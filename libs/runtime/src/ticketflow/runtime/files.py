"""Private files in the data dir: the dir 0700, every file 0600 (they hold tickets, refunds and
replies, and other users of the host have no business reading them).

Each owner makes its files private where it creates them, and tightens what an older version left
readable by others at start, reporting each change in one line (the path and both modes, never the
content). SQLite gives a database's ``-wal``, ``-shm`` and ``-journal`` files the mode of the
database file itself, so a database created 0600 keeps its side files 0600; side files left by an
older version are tightened with it (`private_sqlite`).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "SQLITE_SIDE_FILES",
    "private_dir",
    "private_file",
    "private_sqlite",
]

log = logging.getLogger("ticketflow.runtime.files")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

Report = Callable[[str], None]


def _warn(line: str) -> None:
    log.warning("%s", line)


def _tighten(path: Path, mode: int, report: Report) -> bool:
    """chmod ``path`` to ``mode`` if group or others have any access; True if it did."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not current & 0o077:
        return False
    os.chmod(path, mode)
    report(
        f"tightened the permissions of {path} from {current:04o} to {mode:04o} "
        "(an older version left it readable by other users)"
    )
    return True


def private_dir(path: Path, *, tighten: bool = True, report: Report = _warn) -> None:
    """Create ``path`` (and missing parents) with the new directory itself 0700; an existing one
    is tightened to 0700 when ``tighten`` (for the dir's owner; a service given a dir leaves it)."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(path, PRIVATE_DIR_MODE)  # whatever the umask
            return
    if tighten:
        _tighten(path, PRIVATE_DIR_MODE, report)


def private_file(path: Path, *, report: Report = _warn) -> bool:
    """Make sure ``path`` exists and only its owner can read or write it: a missing file is
    created empty with mode 0600 (an empty file is a valid empty SQLite database); an existing one
    keeps its content and is tightened to 0600. True if the file was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        _tighten(path, PRIVATE_FILE_MODE, report)
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # whatever the umask
    finally:
        os.close(fd)
    return True


def private_sqlite(path: Path, *, create: bool = True, report: Report = _warn) -> None:
    """A SQLite database and its side files 0600: the database created 0600 when missing (and
    ``create``), an existing one and any side files an older version left tightened."""
    if create:
        private_file(path, report=report)
    else:
        _tighten(path, PRIVATE_FILE_MODE, report)
    for suffix in SQLITE_SIDE_FILES:
        _tighten(path.with_name(path.name + suffix), PRIVATE_FILE_MODE, report)
