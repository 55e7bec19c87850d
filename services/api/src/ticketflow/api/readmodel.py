"""The read-model seam: where "what happened to ticket X?" goes when Temporal cannot answer live.

DESIGN.md "Read paths": the live query answers while the workflow exists and a worker can replay it;
the projection's read model (over gRPC, at `TICKETFLOW_PROJECTION_ADDRESS`) answers when Temporal
says NOT_FOUND or is unavailable. Until the projection's gRPC client lands, `NoReadModel` knows no
ticket, so the api answers 404 / 503 exactly as if the read model had no row.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ticketflow.contracts import TicketOutcome

__all__ = ["NoReadModel", "ReadModel"]


@runtime_checkable
class ReadModel(Protocol):
    """The finished tickets, as the projection recorded them."""

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        """The recorded outcome, or None when the read model has no such ticket.

        Raises `ticketflow.api.errors.Unavailable` when the read model itself cannot be reached.
        """
        ...

    async def aclose(self) -> None: ...


class NoReadModel:
    """Default until the projection client exists: knows nothing, never fails."""

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        return None

    async def aclose(self) -> None:
        return None
