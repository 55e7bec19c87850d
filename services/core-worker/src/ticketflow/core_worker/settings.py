"""Settings of core-worker, from ``TICKETFLOW_*`` environment variables (all optional).

Built once in ``main()`` through ``ticketflow.runtime.load_settings``; the Temporal address,
namespace and log level come from ``ServiceSettings``, the decision keys
(``TICKETFLOW_DECISION_KEYS``, ``TICKETFLOW_DECISION_KEYS_FILE``) from ``DecisionKeySettings``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from ticketflow.runtime.decision_keys import DecisionKeySettings
from ticketflow.storage import Backend, StoreUrl, parse_store_url

__all__ = ["DEFAULT_LEDGER_URL", "Settings"]

# Relative to the data dir: the file the ledger has always lived in.
DEFAULT_LEDGER_URL = "sqlite:///ledger.db"


class Settings(DecisionKeySettings):
    """core-worker settings."""

    data_dir: Path = Path("./var")
    # The refund ledger and reply outbox: sqlite:///<file> (relative: under data_dir) or
    # postgresql://user:password@host:port/db. Empty: DEFAULT_LEDGER_URL.
    ledger_url: str = ""
    # Migrate the ledger's schema at start? None (unset): yes on SQLite (the embedded default
    # needs no extra step), no on PostgreSQL (a deploy runs `ticketflow-core-worker migrate`;
    # the worker refuses to start on a store that is behind).
    migrate_on_start: bool | None = None
    core_max_concurrent_activities: int = Field(16, ge=1, le=1024)
    core_max_concurrent_workflow_tasks: int = Field(32, ge=1, le=1024)
    # Testing only: exit the process right after a refund commits, before Temporal hears of it.
    fault_crash_after_refund_commit: bool = False

    @field_validator("ledger_url")
    @classmethod
    def _parse_ledger_url(cls, value: str, info: ValidationInfo) -> str:
        # Refused here, at start, with the forms that work (the message never echoes the value).
        parse_store_url(value or DEFAULT_LEDGER_URL, data_dir=info.data.get("data_dir", Path(".")))
        return value

    @property
    def ledger_store_url(self) -> StoreUrl:
        return parse_store_url(self.ledger_url or DEFAULT_LEDGER_URL, data_dir=self.data_dir)

    @property
    def ledger_migrates_on_start(self) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        return self.ledger_store_url.backend == Backend.SQLITE

    @property
    def ledger_path(self) -> Path:
        """The default SQLite file of the refund ledger and the reply outbox."""
        return self.data_dir / "ledger.db"
