"""System packages a test step needs beyond Python: present, installed with apt when it can, or a
message that says what to install.

    ensure_apt(["podman", "runc"], "the deploy check builds and runs the service images")
    ensure_apt(["chromium"], "the console's browser tests", required=False)

On a fresh Debian machine as root (CI, a developer's container) the missing packages are
installed. Elsewhere: a required package raises ``MissingSystemPackages`` naming the packages and
the command to run; an optional one (tests that skip with the reason without it) is a warning,
except under CI=true, where it raises too: the tests that need it must never be skipped in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

__all__ = ["MissingSystemPackages", "ensure_apt", "missing_apt"]


class MissingSystemPackages(RuntimeError):
    """Packages absent and not installable here; the message says what to run."""


def _say(line: str) -> None:
    print(f"sysdeps: {line}", flush=True)


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and "install ok installed" in done.stdout


def missing_apt(packages: list[str]) -> list[str]:
    """The packages dpkg does not list as installed (all of them where there is no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    return [p for p in packages if not _installed(p)]


def ensure_apt(packages: list[str], purpose: str, *, required: bool = True) -> bool:
    """Make sure the Debian ``packages`` are installed, for ``purpose`` (said in every message);
    True when they are. See the module docstring for what happens when they cannot be."""
    missing = missing_apt(packages)
    if not missing:
        return True
    names = " ".join(missing)
    if shutil.which("apt-get") is not None and os.geteuid() == 0:
        _say(f"installing {names} for {purpose} (apt-get; a minute or two the first time)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
                raise MissingSystemPackages(
                    f"{purpose}: `{' '.join(argv)}` exited {done.returncode}:\n{tail}\n"
                    f"install {names} by hand and run again"
                )
        still = missing_apt(missing)
        if still:
            raise MissingSystemPackages(f"{purpose}: apt did not install {' '.join(still)}")
        _say(f"installed {names}")
        return True
    why = "not root" if shutil.which("apt-get") else "no apt-get on this machine"
    hint = f"run `sudo apt-get update && sudo apt-get install -y {names}` (Debian/Ubuntu)"
    if required or os.environ.get("CI", "").lower() == "true":
        ci = "; under CI=true these tests must run" if not required else ""
        raise MissingSystemPackages(
            f"{purpose} needs {names}, not installed and not installable here ({why}){ci}: "
            f"{hint}, then run again"
        )
    _say(f"warning: {purpose} needs {names} ({why}); those tests will skip: {hint}")
    return False


if __name__ == "__main__":
    # `python scripts/sysdeps.py chromium ...`: install by hand what the tests need.
    try:
        sys.exit(0 if ensure_apt(sys.argv[1:] or ["chromium"], "the tests") else 1)
    except MissingSystemPackages as err:
        sys.exit(f"sysdeps: {err}")
