"""System packages the test command needs, installed with apt when it can (`ensure_apt`).

scripts/check.py calls it before the tests that need them: on a fresh Debian machine as root (CI,
a developer's container) it installs what is missing; elsewhere it says what to install. Under
CI=true a package that cannot be installed is an error (the tests that need it must never be
skipped in CI); on a developer's machine it is a warning, and those tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

__all__ = ["SysdepsError", "ensure_apt", "missing_apt"]


class SysdepsError(RuntimeError):
    """A needed system package is missing and could not be installed."""


def _say(line: str) -> None:
    print(f"sysdeps: {line}", flush=True)


def missing_apt(packages: list[str]) -> list[str]:
    """The packages dpkg does not list as installed (all of them where there is no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for package in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def ensure_apt(packages: list[str], purpose: str) -> bool:
    """Make sure the Debian `packages` are installed (for `purpose`); True when they are.

    Installs the missing ones with `apt-get` when running as root on a machine that has it.
    Otherwise: under CI=true raises `SysdepsError` saying what to install; else warns and
    returns False (the tests that need them skip, saying why).
    """
    missing = missing_apt(packages)
    if not missing:
        return True
    names = " ".join(missing)
    can_install = shutil.which("apt-get") is not None and os.geteuid() == 0
    if can_install:
        _say(f"installing {names} for {purpose} (apt-get; about 2 minutes the first time)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
                return _cannot(f"`{' '.join(argv)}` exited {result.returncode}:\n{tail}", names)
        still = missing_apt(missing)
        if not still:
            _say(f"installed {names}")
            return True
        return _cannot(f"apt-get ran but {' '.join(still)} is still not installed", names)
    why = "not root" if shutil.which("apt-get") else "no apt-get on this machine"
    return _cannot(f"{names} is not installed and cannot be installed here ({why})", names, purpose)


def _cannot(why: str, names: str, purpose: str = "") -> bool:
    hint = f"install it: `sudo apt-get install -y {names}` (Debian/Ubuntu)"
    what = f" for {purpose}" if purpose else ""
    if os.environ.get("CI", "").lower() == "true":
        raise SysdepsError(f"{why}{what}; under CI=true these tests must run: {hint}")
    _say(f"warning: {why}{what}; those tests will skip: {hint}")
    return False


if __name__ == "__main__":
    # `python scripts/sysdeps.py chromium ...`: install by hand what the tests need.
    try:
        sys.exit(0 if ensure_apt(sys.argv[1:] or ["chromium"], "the tests") else 1)
    except SysdepsError as err:
        sys.exit(f"sysdeps: {err}")
