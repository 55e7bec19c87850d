"""Right after Temporal restarts, "no worker answered yet" is `no_live_answer`, not a refusal.

Temporal's matching service answers a query on a task queue no worker has polled since it started
with FAILED_PRECONDITION "no poller seen for task queue recently, worker may be down". That is the
normal state until the workers poll again: a 503 `no_live_answer` ("try later"), logged as a
warning, never `temporal_refused` logged as an error.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.api import Settings
from ticketflow.api._temporal_errors import TemporalErrors
from ticketflow.api.errors import NoLiveAnswer
from ticketflow.api.temporal import TicketGateway
from ticketflow.contracts import DATA_CONVERTER
from ticketflow.testkit import DevServer, WorkerFleet, eventually_async

NO_POLLER = RPCError(
    "no poller seen for task queue recently, worker may be down",
    RPCStatusCode.FAILED_PRECONDITION,
    b"",
)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


class NoPollerClient:
    """A Temporal client stand-in whose query meets the server's no-poller answer."""

    def __init__(self) -> None:
        self.service_client = SimpleNamespace(check_health=self.check_health)

    async def check_health(self, **_: Any) -> bool:
        return True

    def get_workflow_handle(self, workflow_id: str) -> Any:
        async def query(*_: Any, **__: Any) -> Any:
            raise NO_POLLER

        return SimpleNamespace(query=query)


async def test_the_no_poller_answer_is_no_live_answer_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    gateway = TicketGateway(Settings(), client=NoPollerClient())  # type: ignore[arg-type]
    with pytest.raises(NoLiveAnswer) as info:
        await gateway.state("t1")
    assert "no worker answered" in info.value.message
    # Any other call meeting it (not a query) is classified the same way, as a warning.
    refused = TemporalErrors("127.0.0.1:7233", "default").refused(NO_POLLER)
    assert isinstance(refused, NoLiveAnswer) and refused.code == "no_live_answer"
    assert "no worker answered yet" in refused.message
    assert errors_logged(caplog) == []
    assert any(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.timeout(120)  # two dev-server starts on a file-backed db
async def test_a_ticket_asked_right_after_a_temporal_restart_is_no_live_answer(
    helpers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = DevServer(db_filename=tmp_path / "temporal.db")
    await asyncio.to_thread(server.start)
    try:
        # The query deadline is longer than the server takes to say "no poller" (about 2 s), so
        # the answer the api classifies is the server's, not its own timeout.
        settings = Settings(
            temporal_address=server.address,
            core_queue=f"api-restart-{uuid.uuid4().hex}",
            query_timeout_s=15.0,
            rpc_timeout_s=5.0,
        )
        client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
        async with helpers.serve_app(settings) as api:
            async with WorkerFleet(client) as fleet:
                helpers.fake_workflow_worker(fleet, settings.core_queue)
                await fleet.start()
                created = await api.post("/tickets", json=helpers.submission())
                assert created.status_code == 202, created.text
                url = f"/tickets/{created.json()['ticket_id']}"

                async def waiting() -> bool:
                    response = await api.get(url)
                    assert response.status_code == 200, response.text
                    assert response.json()["status"] == "WAITING_APPROVAL"
                    return True

                await eventually_async(waiting, what="the ticket waiting for approval")
            # The worker is gone; Temporal restarts on the same db and port.
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)

            response = await api.get(url)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "no_live_answer", error
            assert "try later" in error["message"]
        assert errors_logged(caplog) == []
    finally:
        await asyncio.to_thread(server.stop)
