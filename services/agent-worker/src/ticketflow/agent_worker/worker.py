"""Wiring: connect to Temporal, run one worker per model tier, shut down gracefully on request."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum

from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, ModelTier, names

from .activities import AgentActivities
from .agent import Agent
from .mock import MockAgent
from .settings import Settings

__all__ = [
    "DIST_NAME",
    "GRACEFUL_SHUTDOWN_TIMEOUT",
    "QueueChoice",
    "build_worker",
    "connect",
    "make_agent",
    "package_version",
    "serve",
    "task_queue_for",
]

DIST_NAME = "ticketflow-agent-worker"
# In-flight model calls get this long to finish after SIGTERM, then they are cancelled (and retried
# by Temporal on another worker). Short enough for a rolling restart, longer than a mock call.
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)
CONNECT_RETRY_INITIAL_S = 0.5
CONNECT_RETRY_MAX_S = 5.0

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


def package_version() -> str:
    return importlib.metadata.version(DIST_NAME)


def task_queue_for(tier: ModelTier) -> str:
    return names.AGENT_QUEUE if tier is ModelTier.PRIMARY else names.AGENT_FALLBACK_QUEUE


def make_agent(settings: Settings, tier: ModelTier) -> Agent:
    """The model behind a tier. The one place to swap the mock for a real client."""
    return MockAgent(
        tier,
        latency_ms=settings.mock_latency_ms,
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
        identity=(
            f"{DIST_NAME}/{package_version()} {tier.value} {os.getpid()}@{socket.gethostname()}"
        ),
    )


async def connect(
    settings: Settings, *, stop: asyncio.Event | None = None, echo: Echo = _print
) -> Client | None:
    """Connect, retrying with backoff until Temporal answers; ``None`` if ``stop`` is set first."""
    delay = CONNECT_RETRY_INITIAL_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=DATA_CONVERTER,
            )
        except RuntimeError as err:  # the SDK's "Failed client connect: ..."
            echo(
                f"waiting for Temporal at {settings.temporal_address} (attempt {attempt}, "
                f"next in {delay:.1f}s): {err}"
            )
        if stop is None:
            await asyncio.sleep(delay)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            else:
                return None
        delay = min(delay * 2, CONNECT_RETRY_MAX_S)


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
        f"{DIST_NAME} {package_version()} polling {' and '.join(parts)} on "
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

    Raises the first worker failure (for example an unknown namespace) after shutting all down.
    ``task_queues`` and ``client`` exist for tests (a fresh queue per test, a shared server).
    """
    if client is None:
        client = await connect(settings, stop=stop, echo=echo)
        if client is None:
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
