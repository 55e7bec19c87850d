"""The workflow's metrics count each ticket once, however often its history is replayed.

The core worker here keeps no workflow in its cache (``max_cached_workflows=0``), so every
workflow task replays the ticket's history from the start: a metric recorded by replayed code
would be counted once per task. Then each ticket is queried (another full replay on a worker with
no cache) and its whole history replayed by a ``Replayer`` on the same runtime. The counters,
scraped from the runtime's Prometheus exporter as in production, still say one per ticket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from ticketflow.contracts import DATA_CONVERTER, names
from ticketflow.contracts.decision_signing import DecisionVerifier
from ticketflow.contracts.models import DecideInput, ModelTier, TicketState, TicketStatus
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.decision_auth import DecisionAuth
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.testkit import (
    RecordedOutcomes,
    WorkerFleet,
    eventually,
    fake_agent,
    free_port,
    metric_value,
    scrape,
    ticket_input,
)

from ._tickets import TEST_KEYS, signed, start_ticket, state_when

pytestmark = pytest.mark.timeout(90)  # three tickets, each workflow task a full replay


@pytest.fixture
async def metered_client(
    dev_env: WorkflowEnvironment,
) -> AsyncIterator[tuple[Client, Runtime, str]]:
    """A client on its own runtime, whose Prometheus exporter serves only this test's metrics."""
    address = f"127.0.0.1:{free_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address,
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            )
        )
    )
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
    yield client, runtime, address


async def test_replays_count_nothing_twice(
    metered_client: tuple[Client, Runtime, str], side_effects: SideEffectActivities
) -> None:
    client, runtime, address = metered_client
    projected = RecordedOutcomes()
    async with WorkerFleet(client) as fleet:
        fleet.add(
            names.CORE_QUEUE,
            workflows=[TicketWorkflow],
            activities=[side_effects.issue_refund, side_effects.send_reply],
            interceptors=[DecisionAuth(DecisionVerifier(TEST_KEYS))],
            max_cached_workflows=0,  # every workflow task replays the history from the start
        )
        fleet.add(names.AGENT_QUEUE, activities=fake_agent(ModelTier.PRIMARY))
        fleet.add(names.AGENT_FALLBACK_QUEUE, activities=fake_agent(ModelTier.FALLBACK))
        fleet.add(names.PROJECTION_QUEUE, activities=[projected.activity])
        await fleet.start()

        auto = ticket_input()
        small = ticket_input(refund_cents=1500)
        large = ticket_input(refund_cents=25_000)
        handles = [await start_ticket(client, inp) for inp in (auto, small, large)]
        waiting = await state_when(
            handles[2], lambda s: s.status == TicketStatus.WAITING_APPROVAL, "waiting approval"
        )
        assert waiting.accepting_decisions
        tid = large.ticket.ticket_id
        await handles[2].execute_update(
            names.DECIDE_UPDATE,
            signed(tid, DecideInput(approved=True, approver="alice", reason="ok")),
        )
        outcomes = [await h.result() for h in handles]
        assert [o.status for o in outcomes] == [TicketStatus.RESOLVED] * 3
        for handle in handles:  # a query on a worker without a cache replays it all again
            await handle.query(names.STATUS_QUERY, result_type=TicketState)

    replayer = Replayer(
        workflows=[TicketWorkflow],
        data_converter=DATA_CONVERTER,
        interceptors=[DecisionAuth(DecisionVerifier(TEST_KEYS))],
        runtime=runtime,
    )
    for handle in handles:
        await replayer.replay_workflow(await handle.fetch_history())

    def scraped() -> dict:
        samples = scrape(address)
        # The last workflow task's metrics are exported with the next collection: wait for all.
        assert metric_value(samples, "ticketflow_tickets_finished_total") >= 3
        return samples

    samples = eventually(scraped, timeout=10, what="the three finished tickets counted")
    assert metric_value(samples, "ticketflow_tickets_finished_total") == 3
    assert metric_value(samples, "ticketflow_tickets_finished_total", path="auto") == 2
    assert metric_value(samples, "ticketflow_tickets_finished_total", path="human") == 1
    assert metric_value(samples, "ticketflow_approval_wait_seconds_count", result="decided") == 1
    assert metric_value(samples, "ticketflow_ticket_duration_seconds_count") == 3
    # Activities are never replayed: one refund paid each for the two refunds, one reply each.
    assert metric_value(samples, "ticketflow_refunds_paid_total") == 2
    assert metric_value(samples, "ticketflow_refunds_paid_cents_total") == 1500 + 25_000
    assert metric_value(samples, "ticketflow_replies_sent_total", kind="resolution") == 3
    # The worker did replay: many more workflow tasks than tickets, every one from the start.
    assert metric_value(samples, "temporal_workflow_task_execution_latency_seconds_count") > 6
