"""Settings of core-worker, from ``TICKETFLOW_*`` environment variables (all optional).

Built once in ``main()`` through ``ticketflow.runtime.load_settings``; the Temporal address,
namespace and log level come from ``ServiceSettings``, the decision keys
(``TICKETFLOW_DECISION_KEYS``, ``TICKETFLOW_DECISION_KEYS_FILE``) from ``DecisionKeySettings``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from ticketflow.runtime.decision_keys import DecisionKeySettings

__all__ = ["Settings"]


class Settings(DecisionKeySettings):
    """core-worker settings."""

    data_dir: Path = Path("./var")
    core_max_concurrent_activities: int = Field(16, ge=1, le=1024)
    core_max_concurrent_workflow_tasks: int = Field(32, ge=1, le=1024)
    # Testing only: exit the process right after a refund commits, before Temporal hears of it.
    fault_crash_after_refund_commit: bool = False

    @property
    def ledger_path(self) -> Path:
        """The SQLite file of the refund ledger and the reply outbox (ops read it by this name)."""
        return self.data_dir / "ledger.db"
