"""devserver.py: the dev server's command line, port helpers, and a real dev server on a db file."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from ticketflow.contracts import names, search_attributes
from ticketflow.launcher.devserver import (
    DevServer,
    SearchAttributeConflictError,
    TemporalBinaryNotFoundError,
    dev_server_command,
    ensure_search_attributes,
    free_port,
    parse_address,
    port_is_free,
    port_is_open,
    temporal_binary,
    wait_for_port,
)


def _flag_values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def test_dev_server_command_has_every_setting() -> None:
    cmd = dev_server_command(db_filename="/data/temporal.db", port=7300, binary="/bin/temporal")
    assert cmd[:3] == ["/bin/temporal", "server", "start-dev"]
    assert _flag_values(cmd, "--db-filename") == ["/data/temporal.db"]
    assert _flag_values(cmd, "--ip") == ["127.0.0.1"]
    assert _flag_values(cmd, "--port") == ["7300"]
    assert _flag_values(cmd, "--ui-port") == ["8300"]
    assert _flag_values(cmd, "--namespace") == ["default"]
    assert _flag_values(cmd, "--search-attribute") == [
        f"{key}={kind}" for key, kind in names.SEARCH_ATTRIBUTES.items()
    ]
    assert "TicketStatus=Keyword" in _flag_values(cmd, "--search-attribute")
    assert _flag_values(cmd, "--sqlite-pragma") == ["journal_mode=wal", "synchronous=normal"]
    assert sorted(_flag_values(cmd, "--dynamic-config-value")) == [
        "matching.numTaskqueueReadPartitions=1",
        "matching.numTaskqueueWritePartitions=1",
    ]
    assert _flag_values(cmd, "--log-level") == ["warn"]
    # Left to the server (random free ports), so two stacks never collide on them.
    assert "--http-port" not in cmd and "--metrics-port" not in cmd
    assert "--headless" not in cmd


def test_dev_server_command_options() -> None:
    cmd = dev_server_command(
        db_filename=None,
        port=7400,
        namespace="tf-test",
        headless=True,
        http_port=7401,
        metrics_port=7402,
        dynamic_config={"frontend.WorkflowTimeSkippingEnabled": True},
        binary="temporal",
    )
    assert "--db-filename" not in cmd
    assert "--headless" in cmd and "--ui-port" not in cmd
    assert _flag_values(cmd, "--namespace") == ["tf-test"]
    assert _flag_values(cmd, "--http-port") == ["7401"]
    assert _flag_values(cmd, "--metrics-port") == ["7402"]
    assert "frontend.WorkflowTimeSkippingEnabled=true" in _flag_values(
        cmd, "--dynamic-config-value"
    )
    explicit_ui = dev_server_command(db_filename=None, port=7500, ui_port=7501, binary="t")
    assert _flag_values(explicit_ui, "--ui-port") == ["7501"]


def test_temporal_binary_is_next_to_python() -> None:
    path = temporal_binary()
    assert os.access(path, os.X_OK)
    assert Path(path).parent == Path(sys.executable).parent


def test_temporal_binary_missing_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TemporalBinaryNotFoundError, match="uv sync"):
        temporal_binary()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7233", ("127.0.0.1", 7233)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:50052", ("::1", 50052)),
        (" temporal:7233 ", ("temporal", 7233)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:x", ":7233", "h:0", "h:70000"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_address(text)


def test_parse_address_default_port() -> None:
    assert parse_address("temporal", default_port=7233) == ("temporal", 7233)


def test_port_helpers() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    assert not port_is_open("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free("127.0.0.1", port)
        assert port_is_open("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, time.monotonic() + 10)


def test_wait_for_port_deadline_and_dead_process() -> None:
    port = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, time.monotonic())
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    process.wait()
    with pytest.raises(RuntimeError, match="code 4"):
        wait_for_port("127.0.0.1", port, time.monotonic() + 60, process=process)


async def _custom_attributes(address: str, namespace: str = "default") -> dict[str, int]:
    client = await Client.connect(address, namespace=namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


@pytest.mark.integration
async def test_dev_server_persists_and_restarts_on_the_same_db(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    port = free_port()
    workflow_id = f"launcher-devserver-{uuid.uuid4().hex}"

    with DevServer(db_filename=db, port=port) as server:
        assert server.process is not None
        attrs = await _custom_attributes(server.address)
        assert attrs.get(names.TICKET_STATUS_SA) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        assert (
            await ensure_search_attributes(server.address, "default", time.monotonic() + 30) == []
        )
        client = await Client.connect(server.address)
        # No worker polls this queue: the execution just stays open, persisted in the db file.
        await client.start_workflow(
            "LauncherTestNoSuchWorkflow",
            id=workflow_id,
            task_queue=f"launcher-test-{uuid.uuid4().hex}",
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search_attributes.TICKET_STATUS, "RECEIVED")]
            ),
        )
        first_pid = server.process.pid
    assert server.process.returncode is not None
    assert not port_is_open("127.0.0.1", port)

    # Same db file, same flags (including --search-attribute TicketStatus=Keyword) again.
    with DevServer(db_filename=db, port=port) as server:
        assert server.process is not None and server.process.pid != first_pid
        attrs = await _custom_attributes(server.address)
        assert attrs.get(names.TICKET_STATUS_SA) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        client = await Client.connect(server.address)
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert description.typed_search_attributes.get(search_attributes.TICKET_STATUS) == (
            "RECEIVED"
        )
        # Visibility is eventually consistent: poll with a deadline.
        query = f"{names.TICKET_STATUS_SA} = 'RECEIVED' AND WorkflowId = '{workflow_id}'"
        deadline = time.monotonic() + 30
        while not [wf.id async for wf in client.list_workflows(query)]:
            assert time.monotonic() < deadline, f"{workflow_id} not listed by {query}"
            await asyncio.sleep(0.1)
    assert not port_is_open("127.0.0.1", port)


@pytest.mark.integration
async def test_ensure_search_attributes_registers_missing_and_detects_conflicts(
    tmp_path: Path,
) -> None:
    with DevServer(log_path=tmp_path / "devserver.log") as server:
        deadline = time.monotonic() + 30
        extra = {"LauncherTestAttr": "KeywordList"}
        assert await ensure_search_attributes(server.address, "default", deadline, extra) == [
            "LauncherTestAttr"
        ]
        assert await ensure_search_attributes(server.address, "default", deadline, extra) == []
        attrs = await _custom_attributes(server.address)
        assert attrs["LauncherTestAttr"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
        with pytest.raises(SearchAttributeConflictError, match="TicketStatus"):
            await ensure_search_attributes(
                server.address, "default", deadline, {names.TICKET_STATUS_SA: "Int"}
            )


async def test_ensure_search_attributes_times_out_without_a_server() -> None:
    with pytest.raises(TimeoutError, match="did not list"):
        await ensure_search_attributes(f"127.0.0.1:{free_port()}", "default", time.monotonic() + 1)


@pytest.mark.integration
async def test_two_dev_servers_side_by_side(tmp_path: Path) -> None:
    # Each with its UI; their HTTP, metrics and internal ports are left to the server's random
    # pick of free ports, so nothing but the frontend and UI ports needs choosing.
    with (
        DevServer(db_filename=tmp_path / "a.db", headless=False) as a,
        DevServer(db_filename=tmp_path / "b.db", headless=False) as b,
    ):
        assert a.ui_port is not None and b.ui_port is not None
        for server in (a, b):
            assert server.process is not None and server.process.poll() is None
            attrs = await _custom_attributes(server.address)
            assert names.TICKET_STATUS_SA in attrs
            ui_port = server.ui_port
            deadline = time.monotonic() + 30
            while not port_is_open("127.0.0.1", ui_port):
                assert time.monotonic() < deadline, f"no web UI on {ui_port}"
                await asyncio.sleep(0.05)
