"""The approvals console's pages: sign in, the queue, a ticket, a decision; sign out.

Server-rendered (Jinja2 templates in `templates/`, CSS and a small script in `static/`, all served
by the api: nothing from a CDN). Every core action is a plain HTML form, so it works without
JavaScript; with it, the queue and the ticket page follow changes by polling a fingerprint
(`/console/queue/state`, `/console/tickets/{id}/state`) every few seconds.

The pages call the same service layer as the HTTP and gRPC APIs (`service.TicketService`), as the
signed-in approver, so the rules are theirs. An `ApiError` becomes a page with a plain message
and its status code (a conflict: who decided, or that the window closed); anything else a generic
page, logged without the request's content: never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from ticketflow.contracts import TicketStatus

from ..auth import identify_approver
from ..deps import settings_of, tickets_of
from ..errors import (
    ApiError,
    Conflict,
    DecisionOutcomeUnknown,
    InvalidRequest,
    NotFound,
    Unauthorized,
)
from ..schemas import DecisionRequest, TicketView
from ..service import TicketService, validating
from . import views
from .session import PATH, ConsoleSession, SessionSigner

__all__ = ["PAGE_SIZE", "STATIC_DIR", "router"]

log = logging.getLogger(__name__)

PAGE_SIZE = 20
STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(money=views.money, when=views.when, words=views.decision_words)

router = APIRouter(prefix=PATH, include_in_schema=False)


def _signer(request: Request) -> SessionSigner:
    signer: SessionSigner = request.app.state.console_sessions
    return signer


def _page(
    request: Request,
    template: str,
    status_code: int = 200,
    session: ConsoleSession | None = None,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, template, {"session": session, **context}, status_code=status_code
    )
    # Pages show customer data: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    return response


def _to_login(note: str | None = None) -> RedirectResponse:
    url = f"{PATH}/login" + ("?ended=1" if note else "")
    return RedirectResponse(url, status_code=303)


def _error_page(
    request: Request, session: ConsoleSession | None, message: str, status_code: int
) -> HTMLResponse:
    return _page(request, "error.html", status_code, session, message=message)


# -- sign in and out --------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def console_root(request: Request) -> Response:
    if _signer(request).read(request) is None:
        return _to_login()
    return RedirectResponse(f"{PATH}/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, ended: Annotated[bool, Query()] = False) -> Response:
    if _signer(request).read(request) is not None:
        return RedirectResponse(f"{PATH}/queue", status_code=303)
    return _login(request, "Your session ended; sign in again." if ended else None, None, 200)


def _login(request: Request, notice: str | None, error: str | None, status_code: int) -> Response:
    signer = _signer(request)
    csrf = signer.login_csrf(request)
    response = _page(request, "login.html", status_code, notice=notice, error=error, csrf=csrf)
    signer.set_login_csrf(request, response, csrf)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=4096)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    signer = _signer(request)
    if not signer.login_csrf_ok(request, csrf):
        return _login(request, None, "The sign-in form expired; please sign in again.", 400)
    try:
        approver = identify_approver(settings_of(request), token.strip() or None)
    except Unauthorized:
        log.info("console: a sign-in with a token that is not an approver's was refused")
        return _login(
            request,
            None,
            "That is not an approver's token. Check it and try again "
            "(a dev stack keeps one in var/approver-token).",
            401,
        )
    response = RedirectResponse(f"{PATH}/queue", status_code=303)
    signer.start(request, response, approver, token.strip())
    log.info("console: %s signed in", approver)
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    session = _signer(request).read(request)
    if session is not None and not session.csrf_ok(csrf):
        return _error_page(request, session, _CSRF_MESSAGE, 403)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    _signer(request).end(response)
    return response


_CSRF_MESSAGE = "This form expired or did not come from this console; reload the page."


# -- the queue --------------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
async def queue(
    request: Request, page_token: Annotated[str | None, Query(max_length=2048)] = None
) -> Response:
    session = _signer(request).read(request)
    if session is None:
        return _to_login()
    try:
        context = await _queue_context(request, page_token)
    except ApiError as exc:
        return _error_page(request, session, exc.message, exc.status)
    return _page(request, "queue.html", session=session, **context)


@router.get("/queue/state")
async def queue_state(
    request: Request, page_token: Annotated[str | None, Query(max_length=2048)] = None
) -> Response:
    """The queue page's fingerprint (the page script reloads the table when it changes)."""
    if _signer(request).read(request) is None:
        return JSONResponse({"signed_in": False}, status_code=401)
    try:
        page = await tickets_of(request).list(TicketStatus.WAITING_APPROVAL, PAGE_SIZE, page_token)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    items = [(t.ticket_id, str(t.status)) for t in page.tickets]
    return JSONResponse({"fingerprint": views.fingerprint(items, page.total)})


async def _queue_context(request: Request, page_token: str | None) -> dict[str, Any]:
    tickets = tickets_of(request)
    page = await tickets.list(TicketStatus.WAITING_APPROVAL, PAGE_SIZE, page_token)
    limit = asyncio.Semaphore(8)

    async def view_of(ticket_id: str) -> TicketView | ApiError:
        async with limit:
            try:
                return await tickets.get(ticket_id)
            except ApiError as exc:
                return exc

    ids = [t.ticket_id for t in page.tickets]
    found = await asyncio.gather(*(view_of(i) for i in ids))
    now = datetime.now(UTC)
    currency = settings_of(request).console_currency
    rows = [views.queue_row(s, v, currency, now) for s, v in zip(page.tickets, found, strict=True)]
    items = [(t.ticket_id, str(t.status)) for t in page.tickets]
    return {
        "rows": rows,
        "total": page.total,
        "next_page_token": page.next_page_token,
        "page_token": page_token,
        "fingerprint": views.fingerprint(items, page.total),
    }


# -- a ticket ---------------------------------------------------------------------------------


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(
    request: Request, ticket_id: str, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    session = _signer(request).read(request)
    if session is None:
        return _to_login()
    try:
        view = await tickets_of(request).get(ticket_id)
    except ApiError as exc:
        return _error_page(request, session, exc.message, exc.status)
    notice = {"approved": "You approved this ticket.", "rejected": "You rejected this ticket."}
    return _ticket(request, session, view, notice=notice.get(done or ""))


@router.get("/tickets/{ticket_id}/state")
async def ticket_state(request: Request, ticket_id: str) -> Response:
    if _signer(request).read(request) is None:
        return JSONResponse({"signed_in": False}, status_code=401)
    try:
        view = await tickets_of(request).get(ticket_id)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    return JSONResponse({"fingerprint": _ticket_fingerprint(view), "status": view.status.value})


def _ticket_fingerprint(view: TicketView) -> str:
    decided = view.decision.decided_at.isoformat() if view.decision else ""
    return views.fingerprint(
        [(view.status.value, decided), (str(view.accepting_decisions), str(len(view.history)))],
        int(view.side_effects_done),
    )


def _ticket(
    request: Request,
    session: ConsoleSession,
    view: TicketView,
    status_code: int = 200,
    *,
    notice: str | None = None,
    error: str | None = None,
    resend: dict[str, Any] | None = None,
    reason: str = "",
) -> HTMLResponse:
    settings = settings_of(request)
    now = datetime.now(UTC)
    left, urgent = views.time_left(view.approval_deadline, now)
    return _page(
        request,
        "ticket.html",
        status_code,
        session,
        view=view,
        currency=settings.console_currency,
        time_left=left,
        urgent=urgent,
        notice=notice,
        error=error,
        resend=resend,
        reason=reason,
        fingerprint=_ticket_fingerprint(view),
    )


@router.post("/tickets/{ticket_id}/decision", response_class=HTMLResponse)
async def decide(
    request: Request,
    ticket_id: str,
    approved: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=10_000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    signer = _signer(request)
    session = signer.read(request)
    if session is None:
        return _to_login("ended")
    if not session.csrf_ok(csrf):
        return _error_page(request, session, _CSRF_MESSAGE, 403)
    tickets = tickets_of(request)
    try:
        decision = _decision(approved, reason)
    except InvalidRequest as exc:
        return await _refused(request, session, ticket_id, 422, exc.message, reason)
    try:
        answer = await _decide_once(tickets, ticket_id, session.approver, decision)
    except DecisionOutcomeUnknown:
        # Sent, twice, without an answer: it may be applied. The page offers the very same
        # decision again (the api applies it once), never a blank form.
        return await _refused(
            request,
            session,
            ticket_id,
            503,
            "Your decision was sent but its confirmation did not arrive; it may already be "
            "recorded. Send the same decision again: it is applied once.",
            reason,
            resend={"approved": approved, "reason": reason},
        )
    except Conflict as exc:
        view = await _view_or_none(tickets, ticket_id)
        message = views.conflict_message(view, session.approver, exc.message)
        return await _refused(request, session, ticket_id, 409, message, reason, view=view)
    except NotFound as exc:
        return _error_page(request, session, exc.message, exc.status)
    except ApiError as exc:
        return await _refused(request, session, ticket_id, exc.status, exc.message, reason)
    verdict = "approved" if answer.decision and answer.decision.approved else "rejected"
    return RedirectResponse(f"{PATH}/tickets/{ticket_id}?done={verdict}", status_code=303)


def _decision(approved: str, reason: str) -> DecisionRequest:
    if approved not in ("true", "false"):
        raise InvalidRequest("Choose Approve or Reject.")
    if not reason.strip():
        raise InvalidRequest("Give a reason: it is recorded with your decision.")
    with validating("reason"):
        return DecisionRequest(approved=approved == "true", reason=reason.strip())


async def _decide_once(
    tickets: TicketService, ticket_id: str, approver: str, decision: DecisionRequest
) -> Any:
    """The decision; sent again, the same, once, when its answer did not come (applied once)."""
    try:
        return await tickets.decide(ticket_id, approver, decision)
    except DecisionOutcomeUnknown as exc:
        wait = float(exc.headers.get("Retry-After", "1"))
        log.warning("console: ticket %s: decision outcome unknown; sending it again", ticket_id)
        await asyncio.sleep(min(wait, 2.0))  # the api's Retry-After, bounded: a person waits
        return await tickets.decide(ticket_id, approver, decision)


async def _view_or_none(tickets: TicketService, ticket_id: str) -> TicketView | None:
    try:
        return await tickets.get(ticket_id)
    except ApiError:
        return None


async def _refused(
    request: Request,
    session: ConsoleSession,
    ticket_id: str,
    status_code: int,
    message: str,
    reason: str,
    *,
    resend: dict[str, Any] | None = None,
    view: TicketView | None = None,
) -> HTMLResponse:
    if view is None:
        view = await _view_or_none(tickets_of(request), ticket_id)
    if view is None:
        return _error_page(request, session, message, status_code)
    return _ticket(request, session, view, status_code, error=message, resend=resend, reason=reason)
