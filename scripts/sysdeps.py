"""System packages a test step needs beyond Python: present, installed with apt when root, or a
failure that says what to install.

    ensure_apt(["podman", "runc"], "the deploy check builds and runs the service images")

A developer's machine without them and without root gets an error naming the packages and the
command; CI (root on a fresh machine) gets them installed, so a test that needs them never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

__all__ = ["MissingSystemPackages", "ensure_apt", "missing_apt"]


class MissingSystemPackages(RuntimeError):
    """Packages absent and not installable here; the message says what to run."""


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip().endswith(" installed")


def missing_apt(packages: list[str]) -> list[str]:
    """The packages of ``packages`` dpkg does not list as installed (all of them without dpkg)."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    return [p for p in packages if not _installed(p)]


def ensure_apt(packages: list[str], purpose: str) -> None:
    """Make sure the Debian ``packages`` are installed, for ``purpose`` (said in every message).

    Installed already: nothing. Root on a machine with apt-get: `apt-get update` then
    `apt-get install -y`, with progress on stderr. Otherwise raise
    ``MissingSystemPackages`` naming the packages and the command to run.
    """
    missing = missing_apt(packages)
    if not missing:
        return
    command = f"apt-get install -y {' '.join(missing)}"
    if shutil.which("apt-get") is None:
        raise MissingSystemPackages(
            f"{purpose} needs the Debian packages {', '.join(missing)} and this machine has no "
            f"apt-get: install their equivalents and run again"
        )
    if os.geteuid() != 0:
        raise MissingSystemPackages(
            f"{purpose} needs {', '.join(missing)}: run `sudo apt-get update && sudo {command}` "
            "and run again"
        )
    print(f"sysdeps: {purpose}: installing {', '.join(missing)} with apt", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", *missing],
    ):
        done = subprocess.run(argv, env=env, check=False)
        if done.returncode != 0:
            raise MissingSystemPackages(
                f"{purpose}: `{' '.join(argv)}` exited {done.returncode}; install "
                f"{', '.join(missing)} by hand and run again"
            )
    still = missing_apt(missing)
    if still:
        raise MissingSystemPackages(f"{purpose}: apt did not install {', '.join(still)}")
