"""The launcher's files in the data dir: one launcher per data dir, the dev approver token."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ticketflow.launcher.config import UsageError
from ticketflow.launcher.data_dir import dev_approver_token, lock_data_dir


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
