from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """core-worker settings, from TICKETFLOW_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    data_dir: Path = Path("./var")
    core_max_concurrent_activities: int = Field(16, ge=1, le=1024)
    core_max_concurrent_workflow_tasks: int = Field(32, ge=1, le=1024)
    # Testing only: exit the process right after a refund commits, before Temporal hears of it.
    fault_crash_after_refund_commit: bool = False

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"
