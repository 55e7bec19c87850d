"""The registry of every type that crosses a process boundary, by where it crosses.

A payload written today is read by tomorrow's code (a replayed history, a worker of the next
release, an api of the last one), so each type here has a committed JSON-schema snapshot in
``libs/contracts/schemas/`` and a compatibility check (``libs/contracts/tests/``). A type that
crosses a boundary but is missing here has neither: the tests compare this registry with the
signatures of the real workflow and activities (``tests/replay/test_boundary_registry.py``).

Adding a boundary type: register it here, run ``uv run python scripts/update_schemas.py``, commit
the new snapshot. See docs/compatibility.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel

from . import names
from .models import (
    Classification,
    ClassifyInput,
    DecideInput,
    DecideResult,
    Draft,
    DraftReplyInput,
    IntakeCheck,
    IntakeCheckInput,
    IssueRefundInput,
    NewTicket,
    Payload,
    RefundReceipt,
    ReplyReceipt,
    SendReplyInput,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
)

__all__ = [
    "ACTIVITIES",
    "BOUNDARY_MODELS",
    "MEMOS",
    "QUERIES",
    "REQUESTS",
    "SEARCH_ATTRIBUTE_VALUES",
    "UPDATES",
    "WORKFLOWS",
    "boundary_types",
]

# name -> (input, result). None: no argument.
WORKFLOWS: Final[dict[str, tuple[type[BaseModel], type[BaseModel]]]] = {
    names.TICKET_WORKFLOW: (TicketInput, TicketOutcome),
}
ACTIVITIES: Final[dict[str, tuple[type[BaseModel], type]]] = {
    names.CLASSIFY: (ClassifyInput, Classification),
    names.DRAFT_REPLY: (DraftReplyInput, Draft),
    names.ISSUE_REFUND: (IssueRefundInput, RefundReceipt),
    names.SEND_REPLY: (SendReplyInput, ReplyReceipt),
    names.RECORD_OUTCOME: (TicketOutcome, bool),
    names.CHECK_INTAKE: (IntakeCheckInput, IntakeCheck),
}
UPDATES: Final[dict[str, tuple[type[BaseModel], type[BaseModel]]]] = {
    names.DECIDE_UPDATE: (DecideInput, DecideResult),
}
QUERIES: Final[dict[str, tuple[None, type[BaseModel]]]] = {
    names.STATUS_QUERY: (None, TicketState),
}
# Search attribute key -> the type of its values (a Keyword holds the enum's string value).
SEARCH_ATTRIBUTE_VALUES: Final[dict[str, type[StrEnum]]] = {
    names.TICKET_STATUS_SA: TicketStatus,
}
# Memo key -> the type of its value.
MEMOS: Final[dict[str, type]] = {
    names.MEMO_CONTENT_SHA256: str,
    names.MEMO_CLASSIFICATION: Classification,
}
# Submitted by clients of the api (HTTP body, gRPC request) and fingerprinted into the memo.
REQUESTS: Final[tuple[type[BaseModel], ...]] = (NewTicket,)


def boundary_types() -> list[type]:
    """Every registered type (models, enums, builtins), in first-seen order, without repeats."""
    seen: dict[type, None] = {}
    for table in (WORKFLOWS, ACTIVITIES, UPDATES, QUERIES):
        for pair in table.values():
            for tp in pair:
                if tp is not None:
                    seen.setdefault(tp)
    for tp in (*SEARCH_ATTRIBUTE_VALUES.values(), *MEMOS.values(), *REQUESTS):
        seen.setdefault(tp)
    return list(seen)


# The payload models that cross a boundary themselves (models nested in them cross too, and are
# snapshotted with them). Sorted by name so the snapshot directory reads like this list.
BOUNDARY_MODELS: Final[tuple[type[Payload], ...]] = tuple(
    sorted(
        (tp for tp in boundary_types() if isinstance(tp, type) and issubclass(tp, Payload)),
        key=lambda tp: tp.__name__,
    )
)
