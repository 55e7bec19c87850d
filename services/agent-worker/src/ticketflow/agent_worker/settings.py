"""Settings of the agent worker, from ``TICKETFLOW_*`` environment variables (all optional).

Built once in ``main()`` through ``ticketflow.runtime.load_settings`` and passed down; never read
at import time. The Temporal address, namespace and log level come from ``ServiceSettings``.
"""

from __future__ import annotations

from pydantic import Field
from ticketflow.runtime import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    """agent-worker settings."""

    # Server-side limit on the primary queue (max_task_queue_activities_per_second): the provider's
    # global budget, shared by every worker polling the queue, so three workers do not triple it.
    agent_rate_per_s: float = Field(10.0, gt=0, le=100_000)
    # One host's capacity (max_concurrent_activities), per worker and per queue.
    agent_max_concurrent: int = Field(8, ge=1, le=10_000)
    mock_latency_ms: float = Field(50.0, ge=0, le=600_000)
    # A uniform extra per call in [0, jitter): a model whose latency varies (benchmarks).
    mock_latency_jitter_ms: float = Field(0.0, ge=0, le=600_000)
    mock_failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    mock_seed: int = 0
