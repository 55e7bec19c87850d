"""The projection's settings: the shared service settings and where its data and read API live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from ticketflow.runtime import ServiceSettings
from ticketflow.storage import Backend, StoreUrl, parse_store_url

__all__ = ["READMODEL_TOKEN_MIN_CHARS", "Settings"]

# A machine secret (no human types it): long enough not to be guessed.
READMODEL_TOKEN_MIN_CHARS = 16


class Settings(ServiceSettings):
    """From TICKETFLOW_* environment variables (TEMPORAL_ADDRESS, NAMESPACE and LOG_LEVEL come from
    ``ServiceSettings``)."""

    data_dir: Path = Path("./var")
    # Not parsed as host:port: port 0 (any free port) is allowed here, and grpc checks the rest.
    # Loopback by default: only the api is expected to call the read API (docs/architecture.md,
    # "Who may read what"); a deployment that puts the api elsewhere also sets the token below.
    projection_address: str = "127.0.0.1:50052"
    # Set: every ReadModelService call needs `authorization: Bearer <token>` (the api sends its
    # TICKETFLOW_READMODEL_TOKEN), else UNAUTHENTICATED; health and reflection stay open.
    readmodel_token: SecretStr = SecretStr("")
    projection_max_concurrent_activities: int = Field(8, ge=1, le=256)
    # Where the read model lives: sqlite:///<file> (relative: under data_dir) or
    # postgresql://user:password@host:port/database. Default: readmodel.db under data_dir.
    readmodel_url: str = "sqlite:///readmodel.db"
    # Run the read model's migrations at start. Unset: yes on SQLite (the embedded default needs
    # no deploy step), no on PostgreSQL (a deploy runs `ticketflow-projection migrate` once; a
    # replica on a store that is behind refuses to start and says so).
    migrate_on_start: bool | None = None
    # How often the approval-queue and stuck-ticket gauges are read from visibility (gauges.py).
    gauge_interval_s: float = Field(15.0, gt=0, le=3600)

    @field_validator("readmodel_url")
    @classmethod
    def _a_store_url(cls, value: str) -> str:
        parse_store_url(value, data_dir=Path("."))  # InvalidStoreUrl says which forms work
        return value

    @field_validator("readmodel_token")
    @classmethod
    def _strong_enough(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and (len(token) < READMODEL_TOKEN_MIN_CHARS or any(c.isspace() for c in token)):
            raise ValueError(
                f"must be at least {READMODEL_TOKEN_MIN_CHARS} characters without whitespace "
                "(`openssl rand -hex 32` makes one), the same on the api and the projection"
            )
        return value

    @property
    def readmodel_store(self) -> StoreUrl:
        return parse_store_url(self.readmodel_url, data_dir=self.data_dir)

    @property
    def migrates_on_start(self) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        return self.readmodel_store.backend == Backend.SQLITE
