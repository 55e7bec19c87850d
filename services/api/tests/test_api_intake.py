"""GET of a ticket whose live run ended as a duplicate (docs/architecture.md, "Intake: accepted
without the read model"): the answer is the earlier run's outcome from the read model, never the
duplicate's empty run; with the read model down, 503 naming what is missing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ticketflow.api.errors import ReadModelUnavailable
from ticketflow.api.service import TicketService
from ticketflow.contracts import EarlierRun, Ticket, TicketOutcome, TicketState, TicketStatus
from ticketflow.testkit import outcome as finished

NOW = datetime(2026, 1, 2, tzinfo=UTC)


class Gateway:
    def __init__(self, state: TicketState) -> None:
        self._state = state

    async def state(self, ticket_id: str) -> TicketState:
        return self._state


class ReadModel:
    def __init__(self, outcome: TicketOutcome | None = None, *, down: bool = False) -> None:
        self.outcome, self.down = outcome, down

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        if self.down:
            raise ReadModelUnavailable.unreachable("127.0.0.1:1", "connection refused")
        return self.outcome


def duplicate_state(ticket_id: str) -> TicketState:
    earlier = EarlierRun(
        ticket_id=ticket_id,
        status=TicketStatus.RESOLVED,
        reply_id="rp_1",
        replied_at=NOW,
        same_content=True,
    )
    ticket = Ticket(ticket_id=ticket_id, customer_id="c", subject="s", body="b")
    dup = TicketOutcome(
        ticket_id=ticket_id,
        status=TicketStatus.RESOLVED,
        ticket=ticket,
        finished_at=NOW,
        duplicate_of=earlier,
    )
    return TicketState(
        **{k: getattr(dup, k) for k in ("ticket_id", "status", "ticket")},
        side_effects_done=True,
        outcome=dup,
        duplicate_of=earlier,
    )


def service(state: TicketState, read_model: ReadModel) -> TicketService:
    gateway: Any = Gateway(state)
    return TicketService(gateway, read_model)  # type: ignore[arg-type]


async def test_a_duplicate_run_answers_with_the_earlier_outcome() -> None:
    original = finished("t-9")
    view = await service(duplicate_state("t-9"), ReadModel(original)).get("t-9")
    assert view.source == "read_model"
    assert view.outcome == original and view.reply == original.reply
    assert view.duplicate_of is None


async def test_a_duplicate_run_with_the_read_model_down_is_503_not_a_blank_ticket() -> None:
    with pytest.raises(ReadModelUnavailable) as info:
        await service(duplicate_state("t-9"), ReadModel(down=True)).get("t-9")
    assert "ticket 't-9' ended RESOLVED in an earlier run" in info.value.message
    assert "unreachable" in info.value.message


async def test_a_duplicate_run_the_read_model_does_not_know_answers_live() -> None:
    view = await service(duplicate_state("t-9"), ReadModel(None)).get("t-9")
    assert view.source == "live" and view.status == TicketStatus.RESOLVED
    assert view.duplicate_of is not None and view.duplicate_of.reply_id == "rp_1"
