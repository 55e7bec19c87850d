"""`TicketView`, the answer of `GET /tickets/{id}` and `GetTicket`: the contracts' ticket facts plus
the api's own fields, built from the live state or the recorded outcome without a copy list."""

from __future__ import annotations

from datetime import timedelta

from ticketflow.api import Settings, create_app
from ticketflow.api.schemas import TicketView
from ticketflow.contracts import StatusChange, TicketFacts, TicketState, TicketStatus
from ticketflow.testkit import BASE_TIME, outcome

API_OWN = {
    "source",
    "accepting_decisions",
    "side_effects_done",
    "approval_deadline",
    "history",
    "outcome",
    "duplicate_of",
}


def facts_of(model: TicketFacts) -> dict[str, object]:
    return {name: getattr(model, name) for name in TicketFacts.model_fields}


def test_the_view_is_the_contract_facts_plus_the_api_fields() -> None:
    assert issubclass(TicketView, TicketFacts)
    assert set(TicketView.model_fields) - set(TicketFacts.model_fields) == API_OWN
    # `from_state` passes every field of the live state on: each must be a field of the view.
    assert set(TicketState.model_fields) <= set(TicketView.model_fields)


def test_the_openapi_schema_requires_the_facts_a_ticket_always_has() -> None:
    schema = create_app(Settings()).openapi()["components"]["schemas"]["TicketView"]
    assert {"ticket_id", "status", "ticket", "source"} <= set(schema["required"])
    assert schema["properties"]["ticket"] == {"$ref": "#/components/schemas/Ticket"}
    TicketView.model_validate(schema["examples"][0])  # the documented example is a valid answer


def test_a_running_ticket_answers_its_live_state() -> None:
    done = outcome("t-live")
    deadline = BASE_TIME + timedelta(hours=1)
    state = TicketState(
        **{**facts_of(done), "status": TicketStatus.WAITING_APPROVAL, "reply": None},
        accepting_decisions=True,
        approval_deadline=deadline,
        history=[StatusChange(status=TicketStatus.WAITING_APPROVAL, at=BASE_TIME)],
    )
    view = TicketView.from_state(state)
    assert view.source == "live"
    assert facts_of(view) == facts_of(state)
    assert view.accepting_decisions is True and view.side_effects_done is False
    assert view.approval_deadline == deadline
    assert [h.status for h in view.history] == [TicketStatus.WAITING_APPROVAL]
    assert view.outcome is None


def test_a_finished_ticket_answers_the_same_live_and_from_the_read_model() -> None:
    done = outcome("t-done")
    state = TicketState(
        **facts_of(done),
        side_effects_done=True,
        history=[StatusChange(status=TicketStatus.RESOLVED, at=BASE_TIME)],
        outcome=done,
    )
    live = TicketView.from_state(state)
    recorded = TicketView.from_outcome(done)
    assert (live.source, recorded.source) == ("live", "read_model")
    assert live.model_dump(exclude={"source"}) == recorded.model_dump(exclude={"source"})
    assert facts_of(recorded) == facts_of(done)
    assert recorded.outcome == done
    assert recorded.accepting_decisions is False and recorded.side_effects_done is True
    # The outcome has no history or deadline: a finished ticket's answer has neither.
    assert recorded.history == [] and recorded.approval_deadline is None
