"""What the benchmark measures: CPU seconds per process of a tree, percentiles, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from collections import defaultdict
from pathlib import Path

import psutil

__all__ = ["CpuMeter", "machine", "percentile"]


def _label(proc: psutil.Process) -> str:
    """A process by its role: the service's console script, ``-m`` module or the binary's name."""
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if cmd and Path(cmd[0]).name == "temporal":
        return "temporal server"
    for i, arg in enumerate(cmd):
        if arg == "-m" and i + 1 < len(cmd):
            return cmd[i + 1].rsplit(".", 1)[-1]
    for arg in reversed(cmd):
        name = Path(arg).name
        if name.startswith(("ticketflow", "temporal", "postgres")) or name.endswith(".py"):
            return name.removesuffix(".py")
    return proc.name()


class CpuMeter:
    """CPU seconds (user + system) of every process under ``roots`` since ``start()``.

    Processes are read while alive (a process that has exited takes its figures with it), so
    ``sample()`` is called before the processes are stopped. Each is labelled by its role, and the
    figures of processes with the same role (a wrapper and its service) are added up.
    """

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self._base: dict[int, float] = {}

    def _tree(self) -> list[psutil.Process]:
        procs = []
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                procs.append(root)
                procs.extend(root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return procs

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0.0
        return t.user + t.system

    def start(self) -> None:
        self._base = {p.pid: self._cpu(p) for p in self._tree()}

    def sample(self) -> dict[str, float]:
        by_role: dict[str, float] = defaultdict(float)
        for proc in self._tree():
            used = self._cpu(proc) - self._base.get(proc.pid, 0.0)
            by_role[_label(proc)] += used
        return {role: round(s, 2) for role, s in sorted(by_role.items()) if s > 0.005}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def machine() -> dict[str, object]:
    """Where the figures come from, for the JSON report."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "commit": commit,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
