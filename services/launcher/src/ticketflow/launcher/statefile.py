"""The supervisor's state file: which children it runs, so a later start can stop what a dead one left.

A supervisor that was SIGKILLed (or crashed past its cleanup) cannot stop its children. On Linux they
get SIGTERM from their parent-death signal (see ``_pdeathsig.py``), but a child may ignore it or
hang in its shutdown. So the supervisor also keeps a JSON file listing itself and its children,
each as a pid and that process's start time (``/proc/<pid>/stat`` field 22, clock ticks since boot)
plus the boot id, and removes the file once it has stopped them all.

``stop_stale_children()`` reads a file that is still there and stops every child that still runs:
a process is signalled only if its pid still has the recorded start time in the same boot, so a
pid the kernel has since given to an unrelated process is never signalled (it is named and left
alone). Process identities are read from ``/proc``: elsewhere nothing is ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "ProcessRecord",
    "State",
    "boot_id",
    "process_record",
    "read_state",
    "remove_state",
    "stop_stale_children",
    "write_state",
]

STATE_VERSION = 1
# After SIGKILL a process is gone within milliseconds unless it is stuck in the kernel: this bound
# only keeps a start from hanging on one that is.
KILL_WAIT_S = 10.0

Status = Literal["running", "gone", "reused", "unknown"]


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_time: int | None  # /proc/<pid>/stat starttime; None where /proc is unavailable


@dataclass(frozen=True)
class State:
    owner: ProcessRecord  # the supervisor that wrote the file
    boot_id: str | None
    children: tuple[ProcessRecord, ...]


@dataclass(frozen=True)
class _Stat:
    state: str
    pgrp: int
    start_time: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ... starttime ...": comm may hold spaces and parentheses.
    fields = raw.rsplit(")", 1)[1].split()
    try:
        return _Stat(state=fields[0], pgrp=int(fields[2]), start_time=int(fields[19]))
    except (IndexError, ValueError):
        return None


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_record(name: str, pid: int) -> ProcessRecord:
    stat = _stat(pid)
    return ProcessRecord(name, pid, stat.start_time if stat else None)


def write_state(
    path: Path,
    children: Iterable[ProcessRecord],
    *,
    owner: ProcessRecord,
    boot: str | None,
) -> None:
    """Write (atomically replace) the state file: ``owner`` (the supervisor) and its children.

    A supervisor passes ``process_record(name, os.getpid())`` and ``boot_id()``.
    """
    data = {
        "version": STATE_VERSION,
        "boot_id": boot,
        "owner": asdict(owner),
        "children": [asdict(child) for child in children],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def remove_state(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_state(path: Path) -> State | None:
    """The state in ``path``; None if there is none. Raises ``ValueError`` if it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: {err}") from err
    try:
        if data["version"] != STATE_VERSION:
            raise ValueError(f"{path}: version {data['version']!r}, expected {STATE_VERSION}")
        return State(
            owner=_record(data["owner"]),
            boot_id=data["boot_id"],
            children=tuple(_record(child) for child in data["children"]),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a state file ({err!r})") from err


def _record(raw: dict[str, object]) -> ProcessRecord:
    name, pid, start_time = raw["name"], raw["pid"], raw["start_time"]
    if not isinstance(name, str) or not isinstance(pid, int) or pid <= 0:
        raise TypeError(f"bad process record {raw!r}")
    if start_time is not None and not isinstance(start_time, int):
        raise TypeError(f"bad process record {raw!r}")
    return ProcessRecord(name, pid, start_time)


def _status(record: ProcessRecord) -> Status:
    stat = _stat(record.pid)
    if stat is None:
        return "gone"
    if record.start_time is None:
        return "unknown"
    if stat.start_time != record.start_time:
        return "reused"
    if stat.state in {"Z", "X"}:  # exited, not yet reaped by its new parent
        return "gone"
    return "running"


def _signal(record: ProcessRecord, sig: signal.Signals) -> bool:
    """Signal the recorded process (its process group if it leads one) only if it is still it."""
    stat = _stat(record.pid)
    if stat is None or record.start_time is None or stat.start_time != record.start_time:
        return False
    try:
        # Supervised children lead their own process group (their own session): the group takes
        # their own subprocesses too. The leader is alive and verified, so the group is its own.
        if stat.pgrp == record.pid:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(records: list[ProcessRecord], timeout: float, poll: float) -> list[ProcessRecord]:
    deadline = time.monotonic() + timeout
    while True:
        left = [r for r in records if _status(r) == "running"]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(poll)


def stop_stale_children(
    path: Path,
    *,
    grace_period: float,
    log: Callable[[str], None],
    poll_interval: float = 0.05,
) -> list[ProcessRecord]:
    """Stop the children listed in a state file left by a supervisor that is gone.

    SIGTERM to each child that still runs (pid and start time match, same boot), SIGKILL after
    ``grace_period`` seconds; says what it did through ``log``; then removes the file (unless a
    child could not be stopped). Returns the children it stopped. If the supervisor that wrote the
    file still runs, nothing is touched.
    """
    try:
        state = read_state(path)
    except ValueError as err:
        log(f"ignoring an unreadable state file: {err}")
        remove_state(path)
        return []
    if state is None:
        return []
    earlier = f"an earlier {state.owner.name} (pid {state.owner.pid})"
    if state.boot_id is None or state.boot_id != boot_id():
        log(f"{earlier} ran before a reboot (or its boot is unknown): nothing of it to stop")
        remove_state(path)
        return []
    if _status(state.owner) in {"running", "unknown"}:
        log(f"{earlier} may still be running ({path}): leaving its processes alone")
        return []

    statuses = [(child, _status(child)) for child in state.children]
    running = [child for child, status in statuses if status == "running"]
    if running:
        what = f"{len(running)} processes" if len(running) > 1 else "1 process"
        them = "them" if len(running) > 1 else "it"
        log(f"{earlier} did not exit cleanly and left {what} running: stopping {them}")
    else:
        log(f"{earlier} did not exit cleanly; none of its processes still runs")
    for child, status in statuses:
        if status == "reused":
            log(f"pid {child.pid} (was {child.name}) is another process now: left alone")
        elif status == "unknown":
            log(f"{child.name} (pid {child.pid}) has no recorded start time: left alone")
    if not running:
        remove_state(path)
        return []

    for child in running:
        log(f"stopping stale {child.name} (pid {child.pid})")
        _try_signal(child, signal.SIGTERM, log)
    left = _wait_gone(running, grace_period, poll_interval)
    for child in left:
        log(f"stale {child.name} (pid {child.pid}) did not stop in {grace_period:.0f}s: SIGKILL")
        _try_signal(child, signal.SIGKILL, log)
    left = _wait_gone(left, KILL_WAIT_S, poll_interval)
    stopped = [child for child in running if child not in left]
    if left:
        names = ", ".join(f"{c.name} (pid {c.pid})" for c in left)
        log(f"could not stop {names}: {path} is kept for the next start")
        write_state(path, left, owner=state.owner, boot=state.boot_id)
    else:
        log(f"stopped {len(stopped)} stale process{'es' if len(stopped) > 1 else ''}")
        remove_state(path)
    return stopped


def _try_signal(record: ProcessRecord, sig: signal.Signals, log: Callable[[str], None]) -> None:
    try:
        _signal(record, sig)
    except PermissionError:
        log(f"not allowed to signal {record.name} (pid {record.pid})")
