"""The launcher's files in the data dir: one launcher per data dir, the dev approver token, all
private (the dir 0700, files 0600; older ones tightened)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ticketflow.launcher.config import UsageError
from ticketflow.launcher.data_dir import (
    LOCK_FILE,
    TEMPORAL_DB,
    dev_approver_token,
    lock_data_dir,
    secure_data_dir,
)


def test_dev_approver_token_is_private_and_reused(tmp_path: Path) -> None:
    token, created = dev_approver_token(tmp_path)
    assert created and len(token) >= 32
    assert stat.S_IMODE((tmp_path / "approver-token").stat().st_mode) == 0o600
    (tmp_path / "approver-token").chmod(0o644)
    assert dev_approver_token(tmp_path) == (token, False)
    assert stat.S_IMODE((tmp_path / "approver-token").stat().st_mode) == 0o600


def test_an_empty_token_file_gets_a_new_token(tmp_path: Path) -> None:
    (tmp_path / "approver-token").write_text("\n")
    token, created = dev_approver_token(tmp_path)
    assert created and (tmp_path / "approver-token").read_text().strip() == token


def test_one_launcher_per_data_dir(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path / "data")
    try:
        # flock locks belong to the open file description: a second open conflicts, as a second
        # process would.
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            lock_data_dir(tmp_path / "data")
    finally:
        held.close()
    lock_data_dir(tmp_path / "data").close()


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        lines: list[str] = []
        secure_data_dir(tmp_path / "data", lines.append)
        lock_data_dir(tmp_path / "data").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / LOCK_FILE).stat().st_mode) == 0o600
    assert not (tmp_path / "data" / TEMPORAL_DB).exists()  # the dev server creates it
    assert lines == []


def test_an_older_data_dir_and_temporal_db_are_tightened_one_line_each(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    older = [data / TEMPORAL_DB, data / f"{TEMPORAL_DB}-wal", data / f"{TEMPORAL_DB}-shm"]
    for path in older:
        path.write_bytes(b"x")
        path.chmod(0o644)
    lines: list[str] = []
    secure_data_dir(data, lines.append)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in older:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.read_bytes() == b"x"
    assert len(lines) == 4 and all(str(data) in line for line in lines)
    assert sum("0755 to 0700" in line for line in lines) == 1
    assert sum("0644 to 0600" in line for line in lines) == 3
