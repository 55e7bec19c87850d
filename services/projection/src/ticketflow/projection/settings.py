"""The projection's settings: the shared service settings and where its data and read API live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from ticketflow.runtime import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    """From TICKETFLOW_* environment variables (TEMPORAL_ADDRESS, NAMESPACE and LOG_LEVEL come from
    ``ServiceSettings``)."""

    data_dir: Path = Path("./var")
    # Not parsed as host:port: port 0 (any free port) is allowed here, and grpc checks the rest.
    projection_address: str = "127.0.0.1:50052"
    projection_max_concurrent_activities: int = Field(8, ge=1, le=256)

    @property
    def readmodel_path(self) -> Path:
        return self.data_dir / "readmodel.db"
