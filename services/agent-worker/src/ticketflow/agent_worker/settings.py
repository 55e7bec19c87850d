"""Settings of the agent worker, from ``TICKETFLOW_*`` environment variables (all optional)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Built once in ``main()`` and passed down; never read at import time."""

    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", extra="ignore", frozen=True)

    temporal_address: str = "127.0.0.1:7233"
    namespace: str = Field("default", min_length=1)
    # Server-side limit on the primary queue (max_task_queue_activities_per_second): the provider's
    # global budget, shared by every worker polling the queue, so three workers do not triple it.
    agent_rate_per_s: float = Field(10.0, gt=0, le=100_000)
    # One host's capacity (max_concurrent_activities), per worker and per queue.
    agent_max_concurrent: int = Field(8, ge=1, le=10_000)
    mock_latency_ms: float = Field(50.0, ge=0, le=600_000)
    mock_failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    mock_seed: int = 0

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value
