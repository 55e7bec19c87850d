"""`buf lint` (STANDARD) and `buf breaking` (FILE) over proto/, with buf from the PyPI package buf-bin."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
BASELINE = PROTO / "breaking-baseline.json"

pytestmark = pytest.mark.compat


def _buf() -> str:
    candidate = Path(sys.executable).parent / "buf"
    found = str(candidate) if candidate.exists() else shutil.which("buf")
    if found is None:
        pytest.skip("buf not installed: `uv sync` installs it (buf-bin is in the root dev group)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_buf(), *args], cwd=PROTO, capture_output=True, text=True, check=False, timeout=120
    )


def test_buf_lint() -> None:
    result = _run("lint")
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}{result.stderr}"


def test_buf_breaking_against_baseline() -> None:
    result = _run("breaking", "--against", str(BASELINE))
    assert result.returncode == 0, (
        "proto/ breaks wire compatibility with proto/breaking-baseline.json (add fields with new "
        "numbers, reserve removed ones; never renumber, retype or rename):\n"
        f"{result.stdout}{result.stderr}"
    )
