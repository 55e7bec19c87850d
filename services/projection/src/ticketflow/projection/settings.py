"""The projection's settings: the shared service settings and where its data and read API live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from ticketflow.runtime import ServiceSettings
from ticketflow.storage import Backend, StoreUrl, parse_store_url

__all__ = ["READMODEL_TOKEN_MIN_CHARS", "Settings"]

# A machine secret (no human types it): long enough not to be guessed.
READMODEL_TOKEN_MIN_CHARS = 16


def _split(address: str) -> tuple[str, int]:
    """(host, port) of "host:port" or "[v6]:port", port 0..65535; the message never quotes it."""
    host, sep, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected host:port with a port in 0..65535 (0: any free port)")
    return host, int(port)


class Settings(ServiceSettings):
    """From TICKETFLOW_* environment variables (TEMPORAL_ADDRESS, NAMESPACE and LOG_LEVEL come from
    ``ServiceSettings``)."""

    data_dir: Path = Path("./var")
    # Where the api reaches the read API, and, for each of PROJECTION_HOST / PROJECTION_PORT left
    # unset, where it listens (before those two existed this one variable did both). Port 0 (any
    # free port) is allowed. Loopback by default: only the api is expected to call the read API
    # (docs/architecture.md, "Who may read what"); a deployment that puts the api elsewhere also
    # sets the token below.
    projection_address: str = "127.0.0.1:50052"
    # Where the read API listens, apart from the address others reach it at: a container binds
    # 0.0.0.0 while the api dials `projection:50052`.
    projection_host: str | None = Field(None, min_length=1)
    projection_port: int | None = Field(None, ge=0, le=65535)
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

    @field_validator("projection_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        _split(value)
        return value

    @property
    def listen_address(self) -> str:
        """host:port the gRPC read API binds."""
        host, port = _split(self.projection_address)
        host = self.projection_host if self.projection_host is not None else host
        port = self.projection_port if self.projection_port is not None else port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

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
