"""The api's application layer, `TicketService`: what the api does, whichever transport asked.

Not a transport and not a Temporal client: the HTTP routes (`routes.py`) and the gRPC servicer
(`grpc_server.py`) both call one `TicketService`, which uses the Temporal gateway (`temporal.py`)
and the projection's read model (`read_model_client.py`). A transport only parses its wire format
into the request models of `schemas` (whose limits are the contracts' limits) and maps
`errors.ApiError` to its own status codes; so validation, idempotency, the read-path fallback and
the meaning of every error are the same over HTTP and gRPC.

Read paths of `get` (docs/architecture.md, "Read paths"):

    live `status` query ──ok──────────────────────────────────────────▶ source "live"
        │ ok, but the run ended as a duplicate (`duplicate_of`) ─▶ the read model's outcome
        │   of the earlier run (source "read_model"); 503 while it is unreachable
        │ TicketNotFound / NoLiveAnswer / TemporalUnavailable / TemporalRefused
        ▼
    read model GetOutcome ──outcome───────────────────────────────────▶ source "read_model"
        │ no such ticket ──▶ the live error (404, or 503 when Temporal could not answer)
        │ unreachable ─────▶ 503: the live error, or `ReadModelUnavailable` after a live 404
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import uuid4

from pydantic import TypeAdapter, ValidationError
from ticketflow.contracts import (
    DecideInput,
    Ticket,
    TicketOutcome,
    TicketState,
    TicketStatus,
    names,
)
from ticketflow.runtime import ticket_fields
from ticketflow.runtime.logs import bind_ticket

from . import _metrics as api_metrics
from ._cancel import cancelled_by_operator, refuse_cancel, send_cancel
from .errors import (
    ApiError,
    CancelRejected,
    DecisionRejected,
    InvalidRequest,
    ReadModelUnavailable,
    TicketContentConflict,
    TicketNotFound,
    Unavailable,
)
from .read_model_client import ReadModelClient
from .schemas import (
    CancelAccepted,
    DecisionAccepted,
    DecisionRequest,
    SubmitTicketRequest,
    TicketIdField,
    TicketList,
    TicketView,
)
from .temporal import SubmitResult, TicketGateway

__all__ = ["TicketService", "checked_ticket_id", "validating"]

log = logging.getLogger(__name__)

_TICKET_ID = TypeAdapter(TicketIdField)


@contextmanager
def validating(*loc_prefix: str) -> Iterator[None]:
    """Turn a pydantic `ValidationError` raised inside into `InvalidRequest` (422 / INVALID_ARGUMENT)."""
    try:
        yield
    except ValidationError as exc:
        raise InvalidRequest.from_errors(exc.errors(), loc_prefix=loc_prefix) from None


def checked_ticket_id(value: str) -> str:
    """`value` when it is a valid ticket id (1-64 of A-Z a-z 0-9 _ -), else `InvalidRequest`."""
    with validating("ticket_id"):
        return _TICKET_ID.validate_python(value, strict=True)


class TicketService:
    """Submit, get, list and decide tickets. One per process, shared by HTTP and gRPC."""

    def __init__(self, gateway: TicketGateway, read_model_client: ReadModelClient) -> None:
        self.gateway = gateway
        self.read_model_client = read_model_client

    async def submit(self, request: SubmitTicketRequest) -> SubmitResult:
        """`_submit`, counted by outcome (`ticketflow_tickets_submitted_total`)."""
        try:
            result = await self._submit(request)
        except ApiError as err:
            api_metrics.submitted(api_metrics.submit_error_outcome(err))
            raise
        api_metrics.submitted("accepted" if result.created else "existing")
        return result

    async def _submit(self, request: SubmitTicketRequest) -> SubmitResult:
        """Start the ticket once; the same ticket_id with the same content answers the existing one.

        Raises `TicketContentConflict` for the same ticket_id with other content. A ticket_id the
        client chose is first looked up in the read model, because Temporal forgets a finished
        workflow (retention, `temporal workflow delete`) and would then start it a second time:

            read model has it ──────────▶ same content: 200 existing; other content: 409
            read model does not ────────▶ start (REJECT_DUPLICATE: a retained workflow answers)
            read model unreachable ─────▶ Temporal retains it: as above; else start with the
                                          check owed (`intake_check`): the workflow asks the
                                          core worker's ledger first, durably, and ends as a
                                          duplicate if the id already finished

        (docs/architecture.md, "Intake: accepted without the read model".) A generated ticket_id
        (uuid4) is new by construction: no lookup.
        """
        if request.ticket_id is None:
            ticket_id = uuid4().hex
            bind_ticket(ticket_id)
            return await self.gateway.submit(request.to_ticket(ticket_id, datetime.now(UTC)))
        bind_ticket(request.ticket_id)
        ticket = request.to_ticket(request.ticket_id, datetime.now(UTC))
        try:
            outcome = await self.read_model_client.get_outcome(ticket.ticket_id)
        except Unavailable as rm_error:
            return await self._submit_without_read_model(ticket, rm_error)
        if outcome is not None:
            return _finished(ticket, outcome)
        return await self.gateway.submit(ticket)

    async def _submit_without_read_model(
        self, ticket: Ticket, rm_error: Unavailable
    ) -> SubmitResult:
        # Temporal can still answer for a workflow it retains (running, or closed and retained).
        # If it has none, the ticket may have finished and been forgotten: the workflow starts
        # with the check owed, and makes it itself, before anything else, against the ledger.
        try:
            existing = await self.gateway.find(ticket)
        except Unavailable as live_error:
            raise live_error.with_note(rm_error.message, rm_error.details) from rm_error
        if existing is not None:
            return existing
        log.warning(
            "ticket %s: not in Temporal and the read model is unavailable (%s): starting it "
            "with the intake check owed",
            ticket.ticket_id,
            rm_error.message,
            extra=ticket_fields(ticket.ticket_id),
        )
        return await self.gateway.submit(ticket, intake_check=True)

    async def get(self, ticket_id: str) -> TicketView:
        """`_get`, counted by who answered (`ticketflow_ticket_reads_total`)."""
        try:
            view = await self._get(ticket_id)
        except ApiError as err:
            api_metrics.read_answered(err.code)
            raise
        api_metrics.read_answered(view.source)
        return view

    async def _get(self, ticket_id: str) -> TicketView:
        """The ticket's state, live from its workflow or from the read model (see the module doc)."""
        ticket_id = checked_ticket_id(ticket_id)
        bind_ticket(ticket_id)
        try:
            state = await self.gateway.state(ticket_id)
        except (TicketNotFound, Unavailable) as live_error:
            outcome = await self._read_model_fallback(ticket_id, live_error)
        else:
            original = None
            if state.duplicate_of is not None:
                original = await self._original_outcome(ticket_id, state)
            if original is None:
                return TicketView.from_state(state)
            outcome = original
        log.info(
            "ticket %s answered from the read model", ticket_id, extra=ticket_fields(ticket_id)
        )
        return TicketView.from_outcome(outcome)

    async def _original_outcome(self, ticket_id: str, state: TicketState) -> TicketOutcome | None:
        # The live run ended as a duplicate of an earlier run whose history Temporal no longer
        # has: the ticket's outcome is that run's, which only the read model holds. Answering
        # the duplicate's empty state instead would show a ticket that never happened.
        try:
            return await self.read_model_client.get_outcome(ticket_id)
        except Unavailable as rm_error:
            earlier = state.duplicate_of
            assert earlier is not None
            raise ReadModelUnavailable(
                f"ticket {ticket_id!r} ended {earlier.status.value} in an earlier run, whose "
                f"outcome is in the read model, and {rm_error.message} Try later.",
                details=rm_error.details,
            ) from rm_error

    async def _read_model_fallback(self, ticket_id: str, live_error: ApiError) -> TicketOutcome:
        try:
            outcome = await self.read_model_client.get_outcome(ticket_id)
        except Unavailable as rm_error:
            log.warning(
                "ticket %s: live query failed (%s) and the read model too: %s",
                ticket_id,
                live_error.code,
                rm_error.message,
                extra=ticket_fields(ticket_id),
            )
            if isinstance(live_error, TicketNotFound):
                # Temporal does not know it, but the read model might: "not found" would be a guess.
                raise ReadModelUnavailable(
                    f"ticket {ticket_id!r} is not in Temporal, and {rm_error.message} Try later.",
                    details=rm_error.details,
                ) from rm_error
            raise live_error.with_note(rm_error.message, rm_error.details) from rm_error
        if outcome is None:
            raise live_error
        return outcome

    async def list(
        self, status: TicketStatus | None, limit: int, page_token: str | None = None
    ) -> TicketList:
        """A page of tickets from Temporal visibility: the approval queue oldest first, other
        lists most recent first; `page_token` is the previous page's `next_page_token`."""
        page = await self.gateway.list_tickets(status, limit, page_token)
        return TicketList(
            tickets=page.tickets, next_page_token=page.next_page_token, total=page.total
        )

    async def decide(
        self, ticket_id: str, approver: str, request: DecisionRequest
    ) -> DecisionAccepted:
        """`_decide`, counted by result (`ticketflow_decisions_total`)."""
        try:
            accepted = await self._decide(ticket_id, approver, request)
        except ApiError as err:
            api_metrics.decided(api_metrics.decision_error_result(err))
            raise
        api_metrics.decided("accepted")
        return accepted

    async def _decide(
        self, ticket_id: str, approver: str, request: DecisionRequest
    ) -> DecisionAccepted:
        """Send the approver's decision. The workflow is the judge of late, duplicate or closed."""
        ticket_id = checked_ticket_id(ticket_id)
        bind_ticket(ticket_id)
        update = DecideInput(approved=request.approved, approver=approver, reason=request.reason)
        try:
            result = await self.gateway.decide(ticket_id, update)
        except TicketNotFound:
            if await self._recorded_outcome(ticket_id) is not None:
                raise DecisionRejected(
                    f"ticket {ticket_id!r} is finished; no more decisions accepted", result="late"
                ) from None
            raise
        log.info(
            "ticket %s decided by %s: approved=%s",
            ticket_id,
            approver,
            request.approved,
            extra=ticket_fields(ticket_id),
        )
        return DecisionAccepted(
            ticket_id=result.ticket_id, status=result.status, decision=result.decision
        )

    async def cancel(self, ticket_id: str, approver: str) -> CancelAccepted:
        """Ask the ticket's workflow to stop: an undecided ticket ends ESCALATED (`_cancel`)."""
        ticket_id = checked_ticket_id(ticket_id)
        try:
            state = await self.gateway.state(ticket_id)
        except TicketNotFound:
            if await self._recorded_outcome(ticket_id) is not None:
                raise CancelRejected(
                    f"ticket {ticket_id!r} is finished; too late to cancel"
                ) from None
            raise
        if cancelled_by_operator(state):
            return CancelAccepted(ticket_id=ticket_id, status=state.status, already=True)
        refuse_cancel(state)
        await send_cancel(self.gateway, ticket_id)
        log.info("ticket %s: cancel requested by %s", ticket_id, approver)
        return CancelAccepted(ticket_id=ticket_id, status=state.status, already=False)

    async def _recorded_outcome(self, ticket_id: str) -> TicketOutcome | None:
        # A decision on a ticket Temporal does not know is refused either way; the read model
        # only says whether "finished" (409) or "unknown" (404) is the better answer.
        try:
            return await self.read_model_client.get_outcome(ticket_id)
        except Unavailable as exc:
            log.warning(
                "read model unavailable for ticket %s: %s",
                ticket_id,
                exc.message,
                extra=ticket_fields(ticket_id),
            )
            return None

    async def check_ready(self) -> None:
        """Raises `TemporalUnavailable` unless Temporal answers a health check in time."""
        await self.gateway.check_ready()


def _finished(ticket: Ticket, outcome: TicketOutcome) -> SubmitResult:
    """A re-submission of a ticket the read model recorded as finished."""
    if outcome.ticket.content_sha256() != ticket.content_sha256():
        raise TicketContentConflict.other_content(ticket.ticket_id)
    return SubmitResult(
        ticket.ticket_id, names.workflow_id(ticket.ticket_id), False, outcome.status
    )
