"""The embedded dev server: its command line, its binary, and real servers started with it
(persistent on a db file across restarts, two side by side)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from ticketflow.contracts import names, search_attributes
from ticketflow.runtime.devserver import (
    TemporalBinaryNotFoundError,
    dev_server_command,
    temporal_binary,
)
from ticketflow.runtime.net import port_is_open
from ticketflow.testkit import DevServer, eventually, eventually_async, free_port


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


async def _custom_attributes(address: str) -> dict[str, int]:
    client = await Client.connect(address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    return dict(listed.custom_attributes)


@pytest.mark.integration
async def test_dev_server_persists_and_restarts_on_the_same_db(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    port = free_port()
    workflow_id = f"runtime-devserver-{uuid.uuid4().hex}"

    with DevServer(db_filename=db, port=port) as server:
        assert server.process is not None
        attrs = await _custom_attributes(server.address)
        assert attrs.get(names.TICKET_STATUS_SA) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        client = await Client.connect(server.address)
        # No worker polls this queue: the execution just stays open, persisted in the db file.
        await client.start_workflow(
            "RuntimeTestNoSuchWorkflow",
            id=workflow_id,
            task_queue=f"runtime-test-{uuid.uuid4().hex}",
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search_attributes.TICKET_STATUS, "RECEIVED")]
            ),
        )
        first_pid = server.process.pid
    assert server.process.returncode is not None
    assert not port_is_open("127.0.0.1", port)

    # Same db file, same flags (including --search-attribute TicketStatus=Keyword) again: a no-op.
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
        query = f"{names.TICKET_STATUS_SA} = 'RECEIVED' AND WorkflowId = '{workflow_id}'"

        async def listed() -> list[str]:
            return [wf.id async for wf in client.list_workflows(query)]

        # Visibility is eventually consistent.
        assert await eventually_async(listed, timeout=30, what=query) == [workflow_id]
    assert not port_is_open("127.0.0.1", port)


@pytest.mark.integration
async def test_two_dev_servers_side_by_side(tmp_path: Path) -> None:
    # Each with its UI; their HTTP, metrics and internal ports are left to the server's random
    # pick of free ports, so nothing but the frontend and UI ports needs choosing.
    with (
        DevServer(db_filename=tmp_path / "a.db", headless=False) as a,
        DevServer(db_filename=tmp_path / "b.db", headless=False) as b,
    ):
        for server in (a, b):
            assert server.process is not None and server.process.poll() is None
            assert names.TICKET_STATUS_SA in await _custom_attributes(server.address)
            ui_port = server.ui_port
            assert ui_port is not None
            eventually(
                lambda ui_port=ui_port: port_is_open("127.0.0.1", ui_port),
                timeout=30,
                what=f"the web UI on {ui_port}",
            )
