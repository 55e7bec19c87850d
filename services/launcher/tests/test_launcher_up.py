"""`ticketflow up` end to end: a real dev server and stand-in services (stub_service.py).

The stand-ins are real Temporal workers and listeners, so the launcher's readiness probes, its
environment passing, the dev approver token, the summary and the shutdown are all exercised; the
services' own behaviour is tested in their packages and in the root tests/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ticketflow.launcher import statefile
from ticketflow.launcher.__main__ import (
    STATE_FILE,
    UsageError,
    build_parser,
    dev_approver_token,
    lock_data_dir,
    settings_from,
)
from ticketflow.launcher.devserver import free_port, port_is_open

DEADLINE_S = 90.0
STUB = Path(__file__).with_name("stub_service.py")
SERVICES = ("api", "core-worker", "agent-worker", "projection")


def eventually(check: Callable[[], bool], message: Callable[[], str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except (OSError, IndexError):
        return True


class Launch:
    """`python -m ticketflow.launcher up ...` in its own session, output collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ticketflow.launcher", "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str) -> None:
        eventually(
            lambda: any(text in line for line in self.lines) or self.process.poll() is not None,
            lambda: f"no {text!r} after {DEADLINE_S}s:\n{self.output}",
        )
        assert any(text in line for line in self.lines), f"exited early:\n{self.output}"

    def wait_exit(self) -> int:
        try:
            code = self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ticketflow up still running after {DEADLINE_S}s:\n{self.output}")
        self._reader.join(timeout=DEADLINE_S)
        return code

    def started_pids(self) -> dict[str, int]:
        pids = {}
        for line in self.lines:
            if "| started " in line and "(pid " in line:
                name = line.split("| started ", 1)[1].split(" ", 1)[0]
                pids[name] = int(line.split("(pid ", 1)[1].split(")", 1)[0])
        return pids

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in self.started_pids().values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def stub_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for service in SERVICES:
        script = bin_dir / f"ticketflow-{service}"
        script.write_text(
            f"#!{sys.executable}\nimport os, runpy\nos.environ['STUB_SERVICE'] = {service!r}\n"
            f"runpy.run_path({str(STUB)!r}, run_name='__main__')\n"
        )
        script.chmod(0o755)
    return bin_dir


@pytest.fixture
def stack_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env.update(
        TICKETFLOW_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        TICKETFLOW_HTTP_PORT=str(free_port()),
        TICKETFLOW_GRPC_PORT=str(free_port()),
        TICKETFLOW_PROJECTION_ADDRESS=f"127.0.0.1:{free_port()}",
        NO_COLOR="1",
    )
    return env


@pytest.fixture
def launches() -> Iterator[Callable[[list[str], dict[str, str]], Launch]]:
    started: list[Launch] = []

    def launch(args: list[str], env: dict[str, str]) -> Launch:
        started.append(Launch(args, env))
        return started[-1]

    yield launch
    for item in started:
        item.kill()


def _stub_record(data_dir: Path, service: str) -> dict:  # type: ignore[type-arg]
    return json.loads((data_dir / f"stub-{service}.json").read_text())


@pytest.mark.integration
def test_up_starts_everything_then_stops_everything(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    ui_port = free_port()
    args = ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin)]
    args += ["--temporal-ui-port", str(ui_port)]
    first = launches(args, stack_env)
    first.wait_for_line("ticketflow is up")

    http_port, grpc_port = stack_env["TICKETFLOW_HTTP_PORT"], stack_env["TICKETFLOW_GRPC_PORT"]
    out = first.output
    assert f"http://127.0.0.1:{http_port}/docs" in out
    assert f"127.0.0.1:{grpc_port}" in out
    assert stack_env["TICKETFLOW_PROJECTION_ADDRESS"] in out
    assert stack_env["TICKETFLOW_TEMPORAL_ADDRESS"] in out
    assert f"http://127.0.0.1:{ui_port}" in out
    assert str(data_dir) in out
    for service in ("core-worker", "agent-worker", "projection", "api"):
        assert f"{service} is ready" in out

    token_file = data_dir / "approver-token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"dev:{token}" in out
    assert (data_dir / "temporal.db").exists()

    records = {service: _stub_record(data_dir, service) for service in SERVICES}
    for service, record in records.items():
        env = record["env"]
        assert env["TICKETFLOW_TEMPORAL_ADDRESS"] == stack_env["TICKETFLOW_TEMPORAL_ADDRESS"]
        assert env["TICKETFLOW_DATA_DIR"] == str(data_dir)
        assert env["TICKETFLOW_HTTP_PORT"] == http_port
        assert env["TICKETFLOW_PROJECTION_ADDRESS"] == stack_env["TICKETFLOW_PROJECTION_ADDRESS"]
        assert env["TICKETFLOW_NAMESPACE"] == "default"
        if service == "api":
            assert env["TICKETFLOW_APPROVER_TOKENS"] == f"dev:{token}"
        else:
            assert "TICKETFLOW_APPROVER_TOKENS" not in env, service
    assert records["agent-worker"]["argv"][1:] == ["--queue", "both"]

    pids = first.started_pids()
    assert set(pids) == {"temporal", *SERVICES}
    first.process.send_signal(signal.SIGTERM)
    assert first.wait_exit() == 0, first.output
    eventually(
        lambda: all(gone(pid) for pid in pids.values()), lambda: f"left behind:\n{first.output}"
    )
    temporal_port = int(stack_env["TICKETFLOW_TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
    assert not port_is_open("127.0.0.1", temporal_port)

    # Again on the same data dir: same temporal.db, same token; Ctrl-C this time.
    second = launches(args, stack_env)
    second.wait_for_line("ticketflow is up")
    assert token_file.read_text().strip() == token
    assert f"dev:{token}" in second.output and "new," not in second.output
    pids = second.started_pids()
    second.process.send_signal(signal.SIGINT)
    assert second.wait_exit() == 0, second.output
    eventually(
        lambda: all(gone(pid) for pid in pids.values()), lambda: f"left behind:\n{second.output}"
    )


@pytest.mark.integration
def test_up_stops_everything_when_a_service_dies(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:  # type: ignore[no-untyped-def]
    env = {**stack_env, "STUB_EXIT_CORE_WORKER": "3", "TICKETFLOW_APPROVER_TOKENS": "ops:secret"}
    launch = launches(
        ["--data-dir", str(tmp_path / "data"), "--bin-dir", str(stub_bin), "--headless"], env
    )
    assert launch.wait_exit() == 1, launch.output
    assert "core-worker exited with code 3 unexpectedly" in launch.output
    assert "ticketflow is up" not in launch.output
    assert not (tmp_path / "data" / "approver-token").exists()  # tokens came from the env
    pids = launch.started_pids()
    assert "temporal" in pids
    eventually(
        lambda: all(gone(pid) for pid in pids.values()), lambda: f"left behind:\n{launch.output}"
    )


@pytest.mark.integration
def test_a_sigkilled_launcher_leaves_nothing_running(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:  # type: ignore[no-untyped-def]
    """Its children get SIGTERM from the kernel (parent-death signal); the next `up` starts."""
    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin), "--headless"]
    first = launches(args, stack_env)
    first.wait_for_line("ticketflow is up")
    pids = first.started_pids()
    state = statefile.read_state(data_dir / STATE_FILE)
    assert state is not None and state.owner.pid == first.process.pid
    assert {c.name: c.pid for c in state.children} == pids

    first.process.send_signal(signal.SIGKILL)
    assert first.wait_exit() == -signal.SIGKILL
    eventually(
        lambda: all(gone(pid) for pid in pids.values()),
        lambda: (
            "left running after the launcher was SIGKILLed: "
            + ", ".join(f"{name} (pid {pid})" for name, pid in pids.items() if not gone(pid))
        ),
    )

    # Same data dir and ports: the port check passes, the stale state file is reported and removed.
    second = launches(args, stack_env)
    second.wait_for_line("ticketflow is up")
    assert f"`ticketflow up` (pid {first.process.pid}) did not exit cleanly" in second.output
    assert "none of its processes still runs" in second.output
    pids = second.started_pids()
    second.process.send_signal(signal.SIGHUP)  # the terminal closed
    assert second.wait_exit() == 0, second.output
    assert "SIGHUP received: stopping everything" in second.output
    eventually(
        lambda: all(gone(pid) for pid in pids.values()), lambda: f"left behind:\n{second.output}"
    )
    assert not (data_dir / STATE_FILE).exists()


@pytest.mark.integration
def test_up_stops_a_stale_process_that_holds_its_port(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:  # type: ignore[no-untyped-def]
    """A process a dead launcher left running (listed in the state file) is stopped first."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    http_port = int(stack_env["TICKETFLOW_HTTP_PORT"])
    listener = (
        "import socket, sys\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {http_port})); s.listen()\n"
        "print('listening', flush=True)\n"
        "sys.stdin.read()\n"
    )
    stale = subprocess.Popen(
        [sys.executable, "-c", listener],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert stale.stdout is not None and stale.stdout.readline() == "listening\n"
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        statefile.write_state(
            data_dir / STATE_FILE,
            [statefile.process_record("api", stale.pid)],
            owner=statefile.ProcessRecord("`ticketflow up`", dead.pid, 1),
            boot=statefile.boot_id(),
        )
        launch = launches(
            ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin), "--headless"], stack_env
        )
        launch.wait_for_line("ticketflow is up")
        out = launch.output
        assert f"stopping stale api (pid {stale.pid})" in out
        assert "stopped 1 stale process" in out
        assert stale.wait(timeout=DEADLINE_S) == -signal.SIGTERM
        launch.process.send_signal(signal.SIGTERM)
        assert launch.wait_exit() == 0, launch.output
    finally:
        stale.kill()
        stale.communicate()


def test_up_refuses_a_port_in_use_and_names_the_setting(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str]
) -> None:
    http_port = int(stack_env["TICKETFLOW_HTTP_PORT"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", http_port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "ticketflow.launcher", "up", "--data-dir", str(tmp_path)],
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
    assert result.returncode == 2, result
    assert f"port {http_port}" in result.stderr
    assert "TICKETFLOW_HTTP_PORT" in result.stderr
    assert "started" not in result.stdout


def _settings(argv: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return settings_from(build_parser().parse_args(["up", *argv]), env)


def test_settings_defaults_and_env(tmp_path: Path) -> None:
    s = _settings([], {"TICKETFLOW_DATA_DIR": str(tmp_path)})
    assert (s.temporal_port, s.ui_port, s.http_port, s.grpc_port) == (7233, 8233, 8000, 50051)
    assert s.projection_address == "127.0.0.1:50052"
    assert s.data_dir == tmp_path.resolve()
    assert s.temporal_address == "127.0.0.1:7233"
    s = _settings(
        ["--data-dir", str(tmp_path / "x"), "--headless"],
        {"TICKETFLOW_TEMPORAL_ADDRESS": "localhost:7300", "TICKETFLOW_HTTP_PORT": "8100"},
    )
    assert (s.temporal_port, s.ui_port, s.http_port) == (7300, None, 8100)
    assert s.data_dir == (tmp_path / "x").resolve()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TICKETFLOW_TEMPORAL_ADDRESS": "temporal.internal:7233"}, "--external-temporal"),
        ({"TICKETFLOW_HTTP_PORT": "eighty"}, "TICKETFLOW_HTTP_PORT"),
        ({"TICKETFLOW_GRPC_PORT": "70000"}, "TICKETFLOW_GRPC_PORT"),
        ({"TICKETFLOW_PROJECTION_ADDRESS": "10.0.0.1:50052"}, "127.0.0.1:<port>"),
    ],
)
def test_settings_errors_say_what_to_change(env: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        _settings([], env)


def test_external_temporal_may_be_remote() -> None:
    s = _settings(["--external-temporal"], {"TICKETFLOW_TEMPORAL_ADDRESS": "temporal:7233"})
    assert s.temporal_address == "temporal:7233" and s.ui_port is None


def test_dev_approver_token_is_private_and_reused(tmp_path: Path) -> None:
    token, created = dev_approver_token(tmp_path)
    assert created and len(token) >= 32
    assert stat.S_IMODE((tmp_path / "approver-token").stat().st_mode) == 0o600
    (tmp_path / "approver-token").chmod(0o644)
    assert dev_approver_token(tmp_path) == (token, False)
    assert stat.S_IMODE((tmp_path / "approver-token").stat().st_mode) == 0o600


def test_one_launcher_per_data_dir(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path)
    try:
        # flock locks belong to the open file description: a second open conflicts, as a second
        # process would.
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            lock_data_dir(tmp_path)
    finally:
        held.close()
    lock_data_dir(tmp_path).close()
