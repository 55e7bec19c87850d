from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """projection settings, from TICKETFLOW_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    data_dir: Path = Path("./var")
    projection_address: str = "127.0.0.1:50052"
    projection_max_concurrent_activities: int = Field(8, ge=1, le=256)

    @property
    def readmodel_path(self) -> Path:
        return self.data_dir / "readmodel.db"
