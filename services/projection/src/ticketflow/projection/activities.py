"""The projection's activity: record a finished ticket's outcome in the read model.

Synchronous (SQLite is blocking I/O), run on the worker's thread pool; several slots may write at
once, which the store serialises. Idempotent and ordered by the store's version rule, so Temporal's
retries and late deliveries change nothing.
"""

from __future__ import annotations

from temporalio import activity
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketOutcome

from .store import ReadModelStore

__all__ = ["ProjectionActivities"]


class ProjectionActivities:
    def __init__(self, store: ReadModelStore) -> None:
        self._store = store

    @activity.defn(name=names.RECORD_OUTCOME)
    def record_outcome(self, outcome: TicketOutcome) -> bool:
        """True when the read model changed; False for a repeat or an older outcome."""
        info = activity.info()
        changed = self._store.record(outcome, run_id=info.workflow_run_id or "")
        activity.logger.info(
            "ticket %s %s (attempt %d): %s",
            outcome.ticket_id,
            outcome.status.value,
            info.attempt,
            "recorded" if changed else "already recorded (same or newer version)",
        )
        return changed
