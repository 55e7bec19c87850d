"""Paging of `GET /tickets`: opaque page tokens and the two orders a list can come in.

- The approval queue (`WAITING_APPROVAL`) comes oldest first: those are the tickets closest to
  their approval deadline. Temporal's SQL visibility (the dev server's SQLite, `ticketflow up`)
  refuses `ORDER BY` ("operation is not supported: 'ORDER BY' clause"), so the order is made here:
  the token carries a cursor, the (StartTime, WorkflowId) of the last ticket shown, and the next
  page is the `limit` smallest (StartTime, WorkflowId) of the tickets after it, by a query
  `StartTime > t OR (StartTime = t AND WorkflowId > id)` read to its end. Each page reads the
  rest of the queue from visibility (its size bounds the work: hundreds, not millions).
- Every other list comes in visibility order (newest first) and pages with Temporal's own
  `next_page_token`.

A token is base64url of JSON naming the status it was made for, its order, its position (Temporal's
token, or the cursor) and an HMAC of all that (`PageTokens`). A token this api did not make, or
made for another status, is refused with a 400 before Temporal is asked: a client cannot forge a
position, nor take a token to another query (the query is always built from the validated
`status`). The cursor is checked again anyway (a time, a ticket workflow id) and put into the
query only as re-formatted from parsed values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution
from ticketflow.contracts import TICKET_ID_PATTERN, TicketStatus, names
from ticketflow.contracts.decision_signing import DecisionKey

from .errors import BadRequest

__all__ = ["MAX_TOKEN_CHARS", "InvalidPageToken", "Page", "PageTokens", "list_page", "oldest_first"]

MAX_TOKEN_CHARS = 2048
_VERSION = 1
_KEY_DOMAIN = b"ticketflow/api/page-token/v1"
_WORKFLOW_ID = re.compile(
    names.workflow_id("") + TICKET_ID_PATTERN.removeprefix("^").removesuffix("$")
)


def oldest_first(status: TicketStatus | None) -> bool:
    """Whether a list of this status comes oldest first (the approval queue) or newest first."""
    return status == TicketStatus.WAITING_APPROVAL


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[WorkflowExecution]
    next_page_token: str | None
    total: int


class InvalidPageToken(BadRequest):
    code = "invalid_page_token"

    def __init__(self, why: str) -> None:
        super().__init__(
            f"invalid page_token: {why}; pass the next_page_token of the previous answer "
            "unchanged, with the same status"
        )


# -- tokens -----------------------------------------------------------------------------------------


class PageTokens:
    """Makes and checks page tokens: base64url of JSON with an HMAC-SHA256 over the rest.

    The key is derived from the first decision key when the api has one (so every api process
    sharing the keys accepts the others' tokens, also after a restart), else random per process
    (a token then holds until the api restarts; the client starts again from the first page).
    """

    def __init__(self, keys: Sequence[DecisionKey] = ()) -> None:
        secret = keys[0].secret if keys else secrets.token_bytes(32)
        self._key = hmac.new(secret, _KEY_DOMAIN, hashlib.sha256).digest()

    def _mac(self, fields: dict[str, Any]) -> str:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()[:32]

    def encode(self, status: TicketStatus | None, position: dict[str, Any]) -> str:
        fields = {"v": _VERSION, "s": status.value if status else None, **position}
        raw = json.dumps({**fields, "k": self._mac(fields)}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str, status: TicketStatus | None) -> dict[str, Any]:
        """The token's fields; `InvalidPageToken` unless this api made it for `status`."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidPageToken(f"longer than {MAX_TOKEN_CHARS} characters")
        try:
            fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            raise InvalidPageToken("not a token this api made") from None
        if not isinstance(fields, dict) or not isinstance(fields.get("k"), str):
            raise InvalidPageToken("not a token this api made")
        mac = fields.pop("k")
        if fields.get("v") != _VERSION or not hmac.compare_digest(mac, self._mac(fields)):
            raise InvalidPageToken(
                "not a token this api made, altered, or made before the api restarted"
            )
        made_for = fields.get("s")
        if made_for != (status.value if status else None):
            raise InvalidPageToken(
                f"made for status {made_for or '(any)'}, not {status.value if status else '(any)'}"
            )
        return fields


def _temporal_token(fields: dict[str, Any]) -> bytes:
    value = fields.get("t")
    if not isinstance(value, str) or not value:
        raise InvalidPageToken("no position in it")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPageToken("no position in it") from None


def _cursor(fields: dict[str, Any]) -> tuple[datetime, str]:
    value = fields.get("c")
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise InvalidPageToken("no position in it")
    try:
        started = datetime.fromisoformat(value[0])
    except ValueError:
        raise InvalidPageToken("no position in it") from None
    if started.tzinfo is None or not _WORKFLOW_ID.fullmatch(value[1]):
        raise InvalidPageToken("no position in it")
    return started.astimezone(UTC), value[1]


def _literal_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- listing ----------------------------------------------------------------------------------------


def _sort_key(wf: WorkflowExecution) -> tuple[datetime, str]:
    return (wf.start_time.astimezone(UTC), wf.id)


async def list_page(
    client: Client,
    tokens: PageTokens,
    query: str,
    status: TicketStatus | None,
    limit: int,
    token: str | None,
    rpc_timeout: timedelta,
) -> Page:
    """One page of the workflows `query` matches, its next token (None on the last page) and how
    many match in all. `query` is built from `status` by the caller; a `token` made for another
    status, or not by this api, raises `InvalidPageToken` (400)."""
    fields = tokens.decode(token, status) if token else None
    total = (await client.count_workflows(query, rpc_timeout=rpc_timeout)).count
    if oldest_first(status):
        cursor = _cursor(fields) if fields is not None else None
        return await _oldest_first(client, tokens, query, status, limit, cursor, total, rpc_timeout)
    position = _temporal_token(fields) if fields is not None else None
    it = client.list_workflows(
        query, page_size=limit, next_page_token=position, rpc_timeout=rpc_timeout
    )
    await it.fetch_next_page()
    after = it.next_page_token
    encoded = tokens.encode(status, {"t": base64.b64encode(after).decode()}) if after else None
    return Page(list(it.current_page or ()), encoded, total)


async def _oldest_first(
    client: Client,
    tokens: PageTokens,
    query: str,
    status: TicketStatus | None,
    limit: int,
    cursor: tuple[datetime, str] | None,
    total: int,
    rpc_timeout: timedelta,
) -> Page:
    if cursor is not None:
        at, wf_id = _literal_time(cursor[0]), cursor[1]
        query += f' AND (StartTime > "{at}" OR (StartTime = "{at}" AND WorkflowId > "{wf_id}"))'
    rest = client.list_workflows(query, page_size=1000, rpc_timeout=rpc_timeout)
    smallest = heapq.nsmallest(limit + 1, await _all(rest, _after(cursor)), key=_sort_key)
    page = smallest[:limit]
    if len(smallest) <= limit:
        return Page(page, None, total)
    last = page[-1]
    return Page(
        page, tokens.encode(status, {"c": [_literal_time(last.start_time), last.id]}), total
    )


def _after(cursor: tuple[datetime, str] | None) -> Callable[[WorkflowExecution], bool]:
    # Visibility applied the cursor already; this guards against a store that compares times at
    # another precision, so that no ticket is shown twice.
    return lambda wf: cursor is None or _sort_key(wf) > cursor


async def _all(
    executions: AsyncIterator[WorkflowExecution], keep: Callable[[WorkflowExecution], bool]
) -> list[WorkflowExecution]:
    return [wf async for wf in executions if keep(wf)]
