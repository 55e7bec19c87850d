"""scripts/sysdeps.py: what the test command does about a missing system package (no apt-get run
here: the install path is exercised by `./dev test` as root, which installs chromium)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import sysdeps

MISSING = "ticketflow-no-such-package"


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysdeps.os, "geteuid", lambda: 1000)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_an_installed_package_is_not_missing() -> None:
    assert sysdeps.missing_apt(["dpkg", MISSING]) == [MISSING]
    assert sysdeps.ensure_apt(["dpkg"], "nothing") is True


def test_outside_ci_a_missing_package_is_a_warning(not_root, monkeypatch, capsys) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert sysdeps.ensure_apt([MISSING], "the browser tests", required=False) is False
    out = capsys.readouterr().out
    assert "will skip" in out and f"sudo apt-get install -y {MISSING}" in out


def test_under_ci_a_missing_package_is_an_error(not_root, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(sysdeps.MissingSystemPackages, match="under CI=true these tests must run"):
        sysdeps.ensure_apt([MISSING], "the browser tests", required=False)
