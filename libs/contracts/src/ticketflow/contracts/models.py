"""Payload models: every value that crosses a process boundary.

Rules (payloads outlive code; histories written today are replayed by tomorrow's workers):
- add fields only with defaults; never remove or rename a field; never make an optional field required;
- unknown fields are ignored (not forbidden) so an older worker can read a newer payload;
- money is integer cents; time is timezone-aware UTC.
Each model's ``SCHEMA_VERSION`` is bumped on every (additive) change and noted in CHANGELOG.md.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_ID_CHARS",
    "MAX_REASON_CHARS",
    "MAX_REFUND_CENTS",
    "MAX_SUBJECT_CHARS",
    "TERMINAL_STATUSES",
    "TICKET_ID_PATTERN",
    "ActionKind",
    "AgentCall",
    "Category",
    "Cents",
    "Classification",
    "ClassifyInput",
    "DecideInput",
    "DecideResult",
    "Decision",
    "Draft",
    "DraftReplyInput",
    "IssueRefundInput",
    "ModelTier",
    "NewTicket",
    "Payload",
    "Policy",
    "RefundReceipt",
    "ReplyKind",
    "ReplyReceipt",
    "SendReplyInput",
    "ShortId",
    "StatusChange",
    "Ticket",
    "TicketFacts",
    "TicketId",
    "TicketInput",
    "TicketOutcome",
    "TicketState",
    "TicketStatus",
]

TICKET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 10_000
MAX_ID_CHARS = 64
MAX_REFUND_CENTS = 100_000_000  # $1,000,000.00: anything larger is a typo or an attack
MAX_REASON_CHARS = 2_000

TicketId = Annotated[str, StringConstraints(pattern=TICKET_ID_PATTERN)]
ShortId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^\S+$")]
Cents = Annotated[int, Field(ge=0, le=MAX_REFUND_CENTS)]


class Payload(BaseModel):
    """Base of all contract models. Extra fields are ignored for forward compatibility."""

    model_config = ConfigDict(extra="ignore", frozen=False)
    SCHEMA_VERSION: ClassVar[int] = 1


class TicketStatus(StrEnum):
    RECEIVED = "RECEIVED"
    CLASSIFYING = "CLASSIFYING"
    DRAFTING = "DRAFTING"
    WAITING_APPROVAL = "WAITING_APPROVAL"
    EXECUTING = "EXECUTING"
    RESOLVED = "RESOLVED"
    REJECTED = "REJECTED"
    ESCALATED = "ESCALATED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TicketStatus.RESOLVED, TicketStatus.REJECTED, TicketStatus.ESCALATED}
)


class Category(StrEnum):
    REFUND = "refund"
    BILLING = "billing"
    TECHNICAL = "technical"
    ACCOUNT = "account"
    OTHER = "other"


class ActionKind(StrEnum):
    REPLY_ONLY = "reply_only"
    REFUND = "refund"


class ModelTier(StrEnum):
    PRIMARY = "primary"
    FALLBACK = "fallback"


class ReplyKind(StrEnum):
    RESOLUTION = "resolution"
    REJECTION = "rejection"
    ESCALATION = "escalation"


class Policy(Payload):
    """The rules a ticket lives by, fixed when it starts (travels in the workflow input).

    v2: the primary is asked again after a fallback answer that looks auto-approvable.
    """

    SCHEMA_VERSION: ClassVar[int] = 2

    confidence_threshold: float = Field(0.8, ge=0.0, le=1.0)
    auto_approve_limit_cents: Cents = 5_000
    approval_timeout_s: float = Field(24 * 3600.0, gt=0)
    # Agent calls on the primary queue. schedule_to_start is the routing signal to the fallback.
    agent_schedule_to_start_s: float = Field(10.0, gt=0)
    agent_start_to_close_s: float = Field(30.0, gt=0)
    agent_heartbeat_timeout_s: float = Field(5.0, gt=0)
    agent_max_attempts: int = Field(3, ge=1)
    # The fallback's own budget; past it the ticket is ESCALATED.
    fallback_schedule_to_start_s: float = Field(30.0, gt=0)
    fallback_start_to_close_s: float = Field(30.0, gt=0)
    fallback_max_attempts: int = Field(3, ge=1)
    # Side effects (ledger, outbox, projection) retry without limit; a dead worker's attempt is
    # retried once this much time has passed without a result.
    side_effect_start_to_close_s: float = Field(10.0, gt=0)
    # v2. A fallback answer never auto-approves; one that looks auto-approvable (refund within
    # the limit, the fallback's confidence at least fallback_recheck_min_confidence, since its
    # scale never reaches the threshold) is asked of the primary again before a human sees it.
    # The re-asked classify and draft share this schedule-to-start budget; 0 turns it off.
    primary_recheck_schedule_to_start_s: float = Field(
        300.0,
        ge=0,
        description="Schedule-to-start budget shared by the primary's re-asked classify and "
        "draft after a fallback answer; 0: no re-ask (v2).",
    )
    fallback_recheck_min_confidence: float = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description="A fallback classification below this confidence goes to a human without "
        "asking the primary again (v2).",
    )


class NewTicket(Payload):
    """What a customer submits (HTTP and gRPC share it)."""

    customer_id: ShortId
    subject: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_CHARS)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY_CHARS)]
    order_id: ShortId | None = None
    requested_refund_cents: Cents | None = None

    def content_sha256(self) -> str:
        """Fingerprint of the content: the same ticket_id with the same content is the same ticket."""
        canon = json.dumps(
            self.model_dump(mode="json", include=set(NewTicket.model_fields)),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canon.encode()).hexdigest()


class Ticket(NewTicket):
    ticket_id: TicketId
    submitted_at: datetime | None = None


class TicketInput(Payload):
    """Workflow input."""

    ticket: Ticket
    policy: Policy = Field(default_factory=Policy)


class ClassifyInput(Payload):
    ticket: Ticket


class Classification(Payload):
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    action: ActionKind = ActionKind.REPLY_ONLY
    refund_cents: Cents | None = None
    model: str
    tier: ModelTier = ModelTier.PRIMARY
    rationale: str = ""


class DraftReplyInput(Payload):
    ticket: Ticket
    classification: Classification


class Draft(Payload):
    text: str
    model: str
    tier: ModelTier = ModelTier.PRIMARY


class DecideInput(Payload):
    """Update `decide`: a human's decision on a ticket waiting for approval.

    v2: the api vouches for it with an HMAC-SHA256 (`contracts.decision_signing`) over the ticket
    id, `approved`, `approver`, `reason` and `key_id`; the core worker refuses it unsigned.
    """

    SCHEMA_VERSION: ClassVar[int] = 2

    approved: bool
    approver: ShortId
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS)] | None = None
    key_id: Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)] | None = Field(
        None, description="Id of the decision key that signed it (v2)."
    )
    signature: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        None, description="Hex HMAC-SHA256 by the api over the decision and key_id (v2)."
    )


class Decision(Payload):
    approved: bool
    approver: str
    reason: str | None = None
    auto: bool = False
    decided_at: datetime


class IssueRefundInput(Payload):
    ticket_id: TicketId
    customer_id: str
    order_id: str | None = None
    amount_cents: Annotated[int, Field(gt=0, le=MAX_REFUND_CENTS)]


class RefundReceipt(Payload):
    ticket_id: str
    refund_id: str
    amount_cents: int
    created_at: datetime
    already_applied: bool = False


class SendReplyInput(Payload):
    ticket_id: TicketId
    customer_id: str
    kind: ReplyKind
    body: str


class ReplyReceipt(Payload):
    ticket_id: str
    reply_id: str
    kind: ReplyKind
    created_at: datetime
    already_sent: bool = False


class AgentCall(Payload):
    """One routed agent call, as the workflow saw it (primary, fallback, or failed)."""

    activity: str
    tier: ModelTier
    ok: bool
    error: str | None = None


class StatusChange(Payload):
    status: TicketStatus
    at: datetime


class TicketFacts(Payload):
    """The facts of a ticket, declared once: what the workflow's query, its result and the api's
    answers all report. Not a payload of its own; its subclasses are."""

    ticket_id: str
    status: TicketStatus
    ticket: Ticket
    classification: Classification | None = None
    draft: Draft | None = None
    decision: Decision | None = None
    refund: RefundReceipt | None = None
    reply: ReplyReceipt | None = None
    escalation_reason: str | None = None
    agent_calls: list[AgentCall] = Field(default_factory=list)


class TicketOutcome(TicketFacts):
    """Workflow result and projection input: a ticket's final state."""

    finished_at: datetime


class TicketState(TicketFacts):
    """Query `status`: the whole current state of a ticket's workflow."""

    # The door to decisions closes before final side effects run; these two are distinct on purpose.
    accepting_decisions: bool = False
    side_effects_done: bool = False
    approval_deadline: datetime | None = None
    history: list[StatusChange] = Field(default_factory=list)
    outcome: TicketOutcome | None = None


class DecideResult(Payload):
    """Update `decide` result."""

    ticket_id: str
    status: TicketStatus
    decision: Decision
