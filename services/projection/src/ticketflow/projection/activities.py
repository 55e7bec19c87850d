from __future__ import annotations

from temporalio import activity
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketOutcome

from .store import ReadModel


class ProjectionActivities:
    def __init__(self, store: ReadModel) -> None:
        self._store = store

    @activity.defn(name=names.RECORD_OUTCOME)
    def record_outcome(self, outcome: TicketOutcome) -> bool:
        changed = self._store.record(outcome)
        activity.logger.info(
            "ticket %s %s: %s",
            outcome.ticket_id,
            outcome.status.value,
            "recorded" if changed else "already recorded",
        )
        return changed
