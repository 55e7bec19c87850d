"""The whole test command (`./dev test` without arguments; `.ci/run` runs it): gates, then every
package's tests in an environment holding only that package, then the cross-service tests.

    uv run python scripts/check.py [--skip-gates] [--only NAME ...]

Steps, in order, each reported as it starts and ends:
1. gates: `ruff check`, `ruff format --check`, `mypy` (config in pyproject.toml);
2. one step per workspace member (libs/*, services/*): `uv sync --locked --package <dist>` into
   `.venvs/<dist>` (that package, its dependencies and its own dev group, nothing else), then its
   tests with that environment's pytest, so an undeclared import fails here, not in production;
3. `tests/` (cross-service, crash, replay) in the full workspace environment (.venv);
4. deploy: `tests/test_deploy_images.py` builds the four service images with podman (installed
   with apt when root, else a failure that says what to install; never skipped), runs them as
   separate containers and a batch of tickets through them.
Every step runs even when an earlier one failed, so one run shows everything that is red. Exit 0
only when every step passed and at least one test ran. The last line is the total, in the form
"N passed, N failed, N skipped".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from sysdeps import MissingSystemPackages, ensure_apt  # noqa: E402

BROWSER_PACKAGES = ("chromium",)
VENVS = ROOT / ".venvs"
REPORTS = ROOT / ".venvs" / "reports"


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    note: str = ""


@dataclass
class Run:
    steps: list[Step] = field(default_factory=list)

    def total(self) -> tuple[int, int, int]:
        return (
            sum(s.passed for s in self.steps),
            sum(s.failed for s in self.steps),
            sum(s.skipped for s in self.steps),
        )


def say(line: str) -> None:
    print(f"check: {line}", flush=True)


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        sys.exit("check: uv not found: run ./dev test (it installs uv with pip)")
    return found


def members() -> list[tuple[str, Path]]:
    """(distribution name, directory) of every workspace member that has tests."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    out = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            project = directory / "pyproject.toml"
            if project.exists() and (directory / "tests").is_dir():
                out.append((tomllib.loads(project.read_text())["project"]["name"], directory))
    return out


def run_command(step: Step, argv: list[str], *, env: dict[str, str] | None = None) -> bool:
    say(f"$ {' '.join(argv)}")
    code = subprocess.run(argv, cwd=ROOT, env=env).returncode
    if code != 0:
        step.note = f"`{' '.join(argv[:3])}` exited {code}"
    return code == 0


def count(step: Step, report: Path) -> None:
    if not report.exists():
        return
    for suite in ET.parse(report).getroot().iter("testsuite"):
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        step.passed += tests - failed - skipped
        step.failed += failed
        step.skipped += skipped


DEPLOY_TESTS = ROOT / "tests" / "test_deploy_images.py"


def pytest_step(step: Step, python: Path, target: Path, extra: list[str]) -> None:
    report = REPORTS / f"{step.name.replace('/', '_')}.xml"
    report.unlink(missing_ok=True)
    argv = [
        str(python),
        "-m",
        "pytest",
        str(target.relative_to(ROOT)),
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    argv += [f"--junitxml={report}", *extra]
    ok = run_command(step, argv)
    count(step, report)
    if ok and step.passed == 0:
        step.note, ok = "no test ran", False
    step.ok = ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--skip-gates", action="store_true", help="no ruff/mypy (quicker iteration)"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="steps to run: gates, a member dir (services/api), tests or deploy",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to every pytest run (after --)")
    args = parser.parse_args(argv)
    wanted = set(args.only) if args.only else None
    REPORTS.mkdir(parents=True, exist_ok=True)
    run = Run()
    venv_bin = ROOT / ".venv" / "bin"

    def want(name: str) -> bool:
        return wanted is None or name in wanted

    started = time.monotonic()
    plan = (["gates"] if not args.skip_gates and want("gates") else []) + [
        str(d.relative_to(ROOT)) for _, d in members() if want(str(d.relative_to(ROOT)))
    ]
    if want("tests"):
        plan.append("tests")
    if want("deploy"):
        plan.append("deploy")
    say(f"{len(plan)} steps: {', '.join(plan)}")

    if "gates" in plan:
        for name, cmd in (
            ("ruff check", [str(venv_bin / "ruff"), "check", "."]),
            ("ruff format", [str(venv_bin / "ruff"), "format", "--check", "."]),
            ("mypy", [str(venv_bin / "mypy")]),
        ):
            step = Step(f"gate: {name}")
            t0 = time.monotonic()
            say(f"[{len(run.steps) + 1}] {step.name}")
            step.ok = run_command(step, cmd)
            step.seconds = time.monotonic() - t0
            run.steps.append(step)

    for dist, directory in members():
        rel = str(directory.relative_to(ROOT))
        if rel not in plan:
            continue
        step = Step(rel)
        t0 = time.monotonic()
        say(
            f"[{len(run.steps) + 1}] {rel}: its tests with only {dist} and its dependencies installed"
        )
        env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENVS / dist)}
        synced = run_command(
            step,
            [uv(), "sync", "--locked", "--package", dist, "--python", "python3.11", "--quiet"],
            env=env,
        )
        if synced:
            pytest_step(step, VENVS / dist / "bin" / "python", directory, args.pytest_args)
        step.seconds = time.monotonic() - t0
        run.steps.append(step)

    if "tests" in plan:
        step = Step("tests")
        t0 = time.monotonic()
        try:
            # The console's browser tests drive the system's Chromium (tests/test_console_browser.py).
            ensure_apt(list(BROWSER_PACKAGES), "the console's browser tests", required=False)
        except MissingSystemPackages as err:
            step.note = str(err).splitlines()[0]
            say(f"error: {err}")
        say(
            f"[{len(run.steps) + 1}] tests/: cross-service, crash and replay tests, whole workspace"
        )
        ignore = f"--ignore={DEPLOY_TESTS.relative_to(ROOT)}"  # its own step, below
        pytest_step(step, venv_bin / "python", ROOT / "tests", [ignore, *args.pytest_args])
        step.seconds = time.monotonic() - t0
        run.steps.append(step)

    if "deploy" in plan:
        step = Step("deploy")
        t0 = time.monotonic()
        say(
            f"[{len(run.steps) + 1}] deploy: the service images built with podman, run as "
            "separate containers, tickets through them (cold and warm build times below)"
        )
        pytest_step(step, venv_bin / "python", DEPLOY_TESTS, args.pytest_args)
        step.seconds = time.monotonic() - t0
        run.steps.append(step)

    say(f"summary ({time.monotonic() - started:.0f} s):")
    for s in run.steps:
        counts = (
            f"{s.passed} passed, {s.failed} failed, {s.skipped} skipped"
            if s.passed or s.failed
            else ""
        )
        status = "ok  " if s.ok else "FAIL"
        say(f"  {status} {s.name:<28} {s.seconds:6.0f} s  {counts}  {s.note}".rstrip())
    passed, failed, skipped = run.total()
    all_ok = all(s.ok for s in run.steps) and passed > 0
    if not all_ok:
        red = [s.name for s in run.steps if not s.ok]
        say(
            f"red: {', '.join(red) or 'no test ran'}; rerun one step with `./dev check --only <step>`"
        )
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
