"""The api starts and answers while Temporal is down, and recovers by itself when it comes up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from ticketflow.api import Settings
from ticketflow.contracts import DATA_CONVERTER
from ticketflow.runtime.devserver import temporal_binary
from ticketflow.testkit import (
    TEST_DECISION_KEYS,
    DevServer,
    eventually_async,
    free_port,
    stop_env,
)


def down_settings(helpers, port: int) -> Settings:
    return Settings(
        temporal_address=f"127.0.0.1:{port}",
        approver_tokens=f"alice:{helpers.APPROVERS['alice']}",
        decision_keys=TEST_DECISION_KEYS,
        health_timeout_s=0.5,
        rpc_timeout_s=2.0,
        query_timeout_s=1.0,
    )


async def test_every_call_is_503_while_temporal_is_unreachable(helpers) -> None:
    port = free_port()
    expected = f"Temporal at 127.0.0.1:{port} is unreachable; is the server running?"
    async with helpers.serve_app(down_settings(helpers, port)) as api:
        health = await api.get("/healthz")
        assert health.status_code == 200

        calls = [
            api.get("/readyz"),
            api.post("/tickets", json=helpers.submission()),
            api.get("/tickets/some-ticket"),
            api.get("/tickets", params={"status": "WAITING_APPROVAL"}),
            api.post(
                "/tickets/some-ticket/decision", json={"approved": True}, headers=helpers.bearer()
            ),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "temporal_unavailable"
            assert error["message"] == expected

        # Authentication is still checked first: no token, no information.
        refused = await api.post("/tickets/some-ticket/decision", json={"approved": True})
        assert refused.status_code == 401


async def test_reconnects_when_temporal_comes_up(helpers, tmp_path: Path) -> None:
    port = free_port()
    async with helpers.serve_app(down_settings(helpers, port)) as api:
        assert (await api.get("/readyz")).status_code == 503
        # A server of its own on the port the api already points at (the session's dev server
        # has a port of its own); started and stopped off the event loop, which keeps serving.
        server = DevServer(port=port, log_path=tmp_path / "temporal.log")
        await asyncio.to_thread(server.start)
        try:

            async def ready() -> bool:
                response = await api.get("/readyz")
                assert response.status_code == 200, response.text
                return True

            await eventually_async(ready, what="/readyz answering 200")
            # A real call goes through too (no worker on this server: the ticket just waits).
            created = await api.post("/tickets", json=helpers.submission())
            assert created.status_code == 202, created.text
        finally:
            await asyncio.to_thread(server.stop)

        async def down_again() -> bool:
            assert (await api.get("/readyz")).status_code == 503
            return True

        await eventually_async(down_again, what="/readyz answering 503 again")


async def test_a_server_without_the_search_attribute_is_a_clear_503(helpers) -> None:
    # Not the test kit's servers: they always register ticketflow's search attributes.
    env = await WorkflowEnvironment.start_local(
        ip="127.0.0.1",
        port=free_port(),
        dev_server_existing_path=temporal_binary(),
        data_converter=DATA_CONVERTER,
        dev_server_log_level="error",
    )
    try:
        settings = Settings(temporal_address=env.client.service_client.config.target_host)
        async with helpers.serve_app(settings) as api:
            for response in (
                await api.post("/tickets", json=helpers.submission()),
                await api.get("/tickets", params={"status": "RECEIVED"}),
            ):
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["code"] == "temporal_refused"
                assert "TicketStatus" in error["message"]
    finally:
        await stop_env(env)
