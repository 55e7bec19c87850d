"""Wiring: connect to Temporal, run one worker per model tier, shut down gracefully on request."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import ModelTier, names
from ticketflow.runtime import connect, package_version

from .activities import AgentActivities
from .agent import Agent
from .mock import MockAgent
from .settings import Settings

__all__ = [
    "DIST_NAME",
    "GRACEFUL_SHUTDOWN_TIMEOUT",
    "VERSION",
    "QueueChoice",
    "build_worker",
    "make_agent",
    "serve",
    "task_queue_for",
    "worker_identity",
]

DIST_NAME = "ticketflow-agent-worker"
VERSION = package_version(DIST_NAME)
# In-flight model calls get this long to finish after SIGTERM, then they are cancelled (and retried
# by Temporal on another worker). Short enough for a rolling restart, longer than a mock call.
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)

Echo = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


class QueueChoice(StrEnum):
    """``--queue``: which task queues this process polls."""

    PRIMARY = "primary"
    FALLBACK = "fallback"
    BOTH = "both"

    @property
    def tiers(self) -> tuple[ModelTier, ...]:
        if self is QueueChoice.BOTH:
            return (ModelTier.PRIMARY, ModelTier.FALLBACK)
        return (ModelTier(self.value),)


def task_queue_for(tier: ModelTier) -> str:
    return names.AGENT_QUEUE if tier is ModelTier.PRIMARY else names.AGENT_FALLBACK_QUEUE


def make_agent(settings: Settings, tier: ModelTier) -> Agent:
    """The model behind a tier. The one place to swap the mock for a real client."""
    return MockAgent(
        tier,
        latency_ms=settings.mock_latency_ms,
        jitter_ms=settings.mock_latency_jitter_ms,
        failure_rate=settings.mock_failure_rate,
        seed=settings.mock_seed,
    )


def build_worker(
    client: Client,
    settings: Settings,
    tier: ModelTier,
    *,
    agent: Agent | None = None,
    task_queue: str | None = None,
) -> Worker:
    """A worker for one tier's queue. The primary queue carries the shared, server-side rate limit;
    the fallback (a different, cheaper provider) only this host's concurrency limit."""
    activities = AgentActivities(agent if agent is not None else make_agent(settings, tier))
    return Worker(
        client,
        task_queue=task_queue or task_queue_for(tier),
        activities=[activities.classify, activities.draft_reply],
        max_concurrent_activities=settings.agent_max_concurrent,
        max_task_queue_activities_per_second=(
            settings.agent_rate_per_s if tier is ModelTier.PRIMARY else None
        ),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
        identity=worker_identity(tier),
    )


def worker_identity(tier: ModelTier, pid: int | None = None) -> str:
    """How Temporal lists this process's worker of ``tier`` among a queue's pollers."""
    pid = os.getpid() if pid is None else pid
    return f"{DIST_NAME}/{VERSION} {tier.value} {pid}@{socket.gethostname()}"


def describe(settings: Settings, queue: QueueChoice, task_queues: Mapping[ModelTier, str]) -> str:
    """The one line printed at start: what is polled, with which limits."""
    parts = []
    for tier in queue.tiers:
        limits = f"max {settings.agent_max_concurrent} concurrent per worker"
        if tier is ModelTier.PRIMARY:
            limits = (
                f"{settings.agent_rate_per_s:g}/s shared by all workers of the queue, " + limits
            )
        parts.append(
            f"{task_queues[tier]} ({tier.value} {make_agent(settings, tier).name}: {limits})"
        )
    return (
        f"{DIST_NAME} {VERSION} polling {' and '.join(parts)} on "
        f"{settings.temporal_address} namespace {settings.namespace}; mock latency "
        f"{settings.mock_latency_ms:g} ms, failure rate {settings.mock_failure_rate:g}, "
        f"seed {settings.mock_seed}"
    )


async def serve(
    settings: Settings,
    queue: QueueChoice,
    *,
    stop: asyncio.Event,
    task_queues: Mapping[ModelTier, str] | None = None,
    client: Client | None = None,
    echo: Echo = _print,
) -> None:
    """Run the workers of ``queue`` until ``stop`` is set, then shut them down gracefully.

    Until then it waits for Temporal, saying so through ``echo`` after each failed attempt; a stop
    ends the wait at once, also in the middle of an attempt. Raises the first worker failure (for
    example an unknown namespace) after shutting all down. ``task_queues`` and ``client`` exist
    for tests (a fresh queue per test, a shared server).
    """
    if client is None:
        client = await connect(
            settings.temporal_address,
            settings.namespace,
            stop=stop,
            progress=lambda line: echo(
                f"{DIST_NAME}: {line}; start it (`ticketflow up`) or set "
                "TICKETFLOW_TEMPORAL_ADDRESS"
            ),
        )
        if client is None:
            echo(f"{DIST_NAME}: stopped before Temporal answered")
            return
    queues = {tier: task_queue_for(tier) for tier in ModelTier} | dict(task_queues or {})
    workers: Sequence[Worker] = [
        build_worker(client, settings, tier, task_queue=queues[tier]) for tier in queue.tiers
    ]
    echo(describe(settings, queue, queues))
    runs = [asyncio.create_task(w.run(), name=f"worker-{w.task_queue}") for w in workers]
    stopped = asyncio.create_task(stop.wait(), name="stop-requested")
    try:
        await asyncio.wait([*runs, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await asyncio.gather(*(w.shutdown() for w in workers))
        results = await asyncio.gather(*runs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
