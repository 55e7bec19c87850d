"""`ticketflow up` end to end: a real dev server and stand-in services (stub_service.py).

The stand-ins are real Temporal workers and listeners, so the launcher's readiness probes, its
environment passing, the dev approver token, the banner and the shutdown are all exercised; the
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
from pathlib import Path
from typing import Any

import pytest
from ticketflow.runtime.net import port_is_open
from ticketflow.testkit import free_port

SERVICES = ("api", "core-worker", "agent-worker", "projection")


def _stub_record(data_dir: Path, service: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((data_dir / f"stub-{service}.json").read_text())
    return record


@pytest.mark.integration
@pytest.mark.timeout(120)  # two full starts and stops of the stack, each with a dev server
def test_up_starts_everything_then_stops_everything(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:
    data_dir = tmp_path / "data"
    ui_port = free_port()
    args = ["--data-dir", str(data_dir), "--bin-dir", str(stub_bin)]
    args += ["--temporal-ui-port", str(ui_port)]
    first = launches(args, stack_env)
    first.wait_for_line("ticketflow is up")

    http_port, grpc_port = stack_env["TICKETFLOW_HTTP_PORT"], stack_env["TICKETFLOW_GRPC_PORT"]
    out = first.output
    assert f"http://127.0.0.1:{http_port}/docs" in out
    assert f"http://127.0.0.1:{http_port}/console   sign in with the approver token" in out
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
    # The banner says where the token is and how to read it, never the token itself.
    assert token not in out
    assert f"cat {token_file}" in out and "(new)" in out
    assert (data_dir / "temporal.db").exists()
    # Private: the data dir 0700, every file in it 0600 (temporal.db by the dev server's umask).
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for path in data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    records = {service: _stub_record(data_dir, service) for service in SERVICES}
    for service, record in records.items():
        env = record["env"]
        assert env["TICKETFLOW_TEMPORAL_ADDRESS"] == stack_env["TICKETFLOW_TEMPORAL_ADDRESS"]
        assert env["TICKETFLOW_DATA_DIR"] == str(data_dir)
        assert env["TICKETFLOW_HTTP_PORT"] == http_port
        assert env["TICKETFLOW_PROJECTION_ADDRESS"] == stack_env["TICKETFLOW_PROJECTION_ADDRESS"]
        assert env["TICKETFLOW_NAMESPACE"] == "default"
        if service == "api":
            # What the banner says to read (`cat` the file) is the bare token the api accepts as
            # a Bearer value: the api's entry is `name:token`, and the name is not part of it.
            assert env["TICKETFLOW_APPROVER_TOKENS"] == f"dev:{token}"
            assert ":" not in token
        else:
            assert "TICKETFLOW_APPROVER_TOKENS" not in env, service
        # The read-model token: made for this run, given to the api and the projection only.
        if service in ("api", "projection"):
            assert len(env["TICKETFLOW_READMODEL_TOKEN"]) >= 32, service
        else:
            assert "TICKETFLOW_READMODEL_TOKEN" not in env, service
        assert "TICKETFLOW_VIEWER_TOKENS" not in env, service  # reads stay open in a dev stack
    readmodel_token = records["api"]["env"]["TICKETFLOW_READMODEL_TOKEN"]
    assert records["projection"]["env"]["TICKETFLOW_READMODEL_TOKEN"] == readmodel_token
    assert readmodel_token not in out
    assert "Reads         open to anyone on this host" in out
    assert records["agent-worker"]["argv"][1:] == ["--queue", "both"]

    pids = first.started_pids()
    assert set(pids) == {"temporal", *SERVICES}
    # The workers yield the CPU to what answers requests (TICKETFLOW_WORKER_NICE, default 10).
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    niceness = {name: os.getpriority(os.PRIO_PROCESS, pid) for name, pid in pids.items()}
    worker = min(mine + 10, 19)
    assert niceness == {
        "temporal": mine,
        "api": mine,
        "projection": mine,
        "core-worker": worker,
        "agent-worker": worker,
    }
    first.process.send_signal(signal.SIGTERM)
    assert first.wait_exit() == 0, first.output
    first.wait_gone(pids.values(), "the stack")
    temporal_port = int(stack_env["TICKETFLOW_TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
    assert not port_is_open("127.0.0.1", temporal_port)

    # Again on the same data dir: same temporal.db, same token; Ctrl-C this time. The data dir and
    # temporal.db as an older version left them (readable by others) are tightened, one line each.
    data_dir.chmod(0o755)
    (data_dir / "temporal.db").chmod(0o644)
    second = launches(args, stack_env)
    second.wait_for_line("ticketflow is up")
    tightened = [line for line in second.lines if "tightened the permissions" in line]
    assert len(tightened) == 2, second.output
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "temporal.db").stat().st_mode) == 0o600
    assert token_file.read_text().strip() == token
    assert token not in second.output
    second_token = _stub_record(data_dir, "api")["env"]["TICKETFLOW_READMODEL_TOKEN"]
    assert second_token != readmodel_token  # one per run, kept nowhere
    assert f"cat {token_file}" in second.output and "(new)" not in second.output
    pids = second.started_pids()
    second.process.send_signal(signal.SIGINT)
    assert second.wait_exit() == 0, second.output
    second.wait_gone(pids.values(), "the stack")


@pytest.mark.integration
def test_up_stops_everything_when_a_service_dies(
    tmp_path: Path, stub_bin: Path, stack_env: dict[str, str], launches
) -> None:
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
    launch.wait_gone(pids.values(), "the stack")


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
            timeout=50,
            check=False,
        )
    assert result.returncode == 2, result
    assert f"port {http_port}" in result.stderr
    assert "TICKETFLOW_HTTP_PORT" in result.stderr
    assert "started" not in result.stdout
