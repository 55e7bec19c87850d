"""TicketWorkflow: one per ticket, id ``ticket-<ticket_id>``.

RECEIVED -> CLASSIFYING -> DRAFTING -> (auto-approve | WAITING_APPROVAL) -> EXECUTING -> RESOLVED,
or REJECTED / ESCALATED. Every transition upserts the ``TicketStatus`` search attribute.

Deterministic code only: no I/O, no settings, no wall clock. Policy arrives in the input and is
fixed for the ticket's life, so replays do not depend on the worker's environment.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutType,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import (
        ActionKind,
        AgentCall,
        Classification,
        ClassifyInput,
        DecideInput,
        DecideResult,
        Decision,
        Draft,
        DraftReplyInput,
        IssueRefundInput,
        ModelTier,
        Policy,
        RefundReceipt,
        ReplyKind,
        ReplyReceipt,
        SendReplyInput,
        StatusChange,
        Ticket,
        TicketInput,
        TicketOutcome,
        TicketState,
        TicketStatus,
    )
    from ticketflow.contracts.search_attributes import TICKET_STATUS

T = TypeVar("T")

# Patch ids are written into histories: never rename or reuse one (docs/compatibility.md).
# v2: after classify, the classification is upserted into the memo.
PATCH_CLASSIFICATION_MEMO = "classification-memo"
# v3: a cancel request escalates (before a decision) or completes (after one) the ticket instead of
# ending the workflow; input the primary refuses as non-retryable escalates without the fallback;
# a non-retryable reply failure no longer fails the ticket. v1/v2 histories keep their behaviour.
PATCH_ROBUST_ENDS = "v3-robust-ends"

AUTO_APPROVER = "auto"
REJECTION_REPLY = (
    "Thank you for contacting us. We have reviewed your request and are unable to approve it as "
    "submitted. A member of our support team will follow up with you personally."
)
ESCALATION_REPLY = (
    "Thank you for contacting us. Your request needs a closer look, so we have passed it to a "
    "member of our support team, who will get back to you."
)

# Transient trouble in one attempt is Temporal's to retry; the workflow decides routing.
_AGENT_NON_RETRYABLE = ["InvalidAgentInput"]
_SIDE_EFFECT_NON_RETRYABLE = ["LedgerConflict", "InvalidSideEffectInput"]


def needs_refund(c: Classification | None) -> bool:
    return c is not None and c.action == ActionKind.REFUND and (c.refund_cents or 0) > 0


def auto_approvable(c: Classification, draft: Draft, policy: Policy) -> bool:
    """Low risk, confident, and answered by the primary model.

    A fallback answer always needs a human.
    """
    if c.tier != ModelTier.PRIMARY or draft.tier != ModelTier.PRIMARY:
        return False
    if c.confidence < policy.confidence_threshold:
        return False
    return not needs_refund(c) or (c.refund_cents or 0) <= policy.auto_approve_limit_cents


def _is_cancel(err: BaseException) -> bool:
    """A cancel request reached the workflow (directly, or through the activity it awaited)."""
    if isinstance(err, asyncio.CancelledError):
        return True
    return isinstance(err, ActivityError) and isinstance(err.cause, CancelledError)


def _non_retryable(err: ActivityError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and (
        cause.non_retryable or cause.type in _AGENT_NON_RETRYABLE
    )


def _describe_failure(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, TemporalTimeoutError):
        return f"timeout:{cause.type.name if cause.type else 'UNKNOWN'}"
    if isinstance(cause, ApplicationError):
        return f"error:{cause.type or 'ApplicationError'}: {cause.message}"
    return f"error:{type(cause).__name__ if cause else 'unknown'}: {err.message}"


@workflow.defn(name=names.TICKET_WORKFLOW)
class TicketWorkflow:
    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self._ticket: Ticket = inp.ticket
        self._policy: Policy = inp.policy
        self._status = TicketStatus.RECEIVED
        self._history: list[StatusChange] = []
        self._classification: Classification | None = None
        self._draft: Draft | None = None
        self._decision: Decision | None = None
        self._refund: RefundReceipt | None = None
        self._reply: ReplyReceipt | None = None
        self._escalation_reason: str | None = None
        self._agent_calls: list[AgentCall] = []
        self._accepting_decisions = False
        self._side_effects_done = False
        self._approval_deadline = None
        self._final: TicketOutcome | None = None

    # ---- run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        try:
            await self._triage()
        except (asyncio.CancelledError, ActivityError) as err:
            if not _is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                raise
            self._on_cancel()
        # From here on the ticket's end is decided; its side effects run to completion. A cancel
        # request now cannot stop money a human approved half-way: the effects are idempotent,
        # so the interrupted one is simply issued again.
        while True:
            try:
                return await self._conclude()
            except (asyncio.CancelledError, ActivityError) as err:
                if not _is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                    raise
                workflow.logger.warning(
                    "cancel requested while ticket %s concludes (%s): finishing its side effects",
                    self._ticket.ticket_id,
                    self._status.value,
                )

    async def _triage(self) -> None:
        """Classify, draft, decide. Ends with the decision door closed and the end status set:
        EXECUTING (approved), REJECTED or ESCALATED."""
        self._set_status(TicketStatus.RECEIVED)

        self._set_status(TicketStatus.CLASSIFYING)
        classification = await self._call_agent(
            names.CLASSIFY, ClassifyInput(ticket=self._ticket), Classification, ModelTier.PRIMARY
        )
        if classification is None:
            return self._mark_escalated("agent could not classify the ticket within its budget")
        self._classification = classification
        self._publish_classification(classification)

        self._set_status(TicketStatus.DRAFTING)
        # Sticky routing: if classify needed the fallback, the primary is congested; don't make
        # the draft wait out another primary schedule-to-start timeout.
        draft = await self._call_agent(
            names.DRAFT_REPLY,
            DraftReplyInput(ticket=self._ticket, classification=classification),
            Draft,
            classification.tier,
        )
        if draft is None:
            return self._mark_escalated("agent could not draft a reply within its budget")
        self._draft = draft

        if auto_approvable(classification, draft, self._policy):
            self._decision = Decision(
                approved=True, approver=AUTO_APPROVER, auto=True, decided_at=workflow.now()
            )
        else:
            timeout = timedelta(seconds=self._policy.approval_timeout_s)
            self._approval_deadline = workflow.now() + timeout
            self._accepting_decisions = True
            self._set_status(TicketStatus.WAITING_APPROVAL)
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
            except TimeoutError:  # builtin: wait_condition's timeout
                pass
            # The door closes here, before any final activity: no late decision can slip in.
            self._accepting_decisions = False
            if self._decision is None:
                return self._mark_escalated("no decision before the approval timeout")

        if self._decision.approved:
            self._set_status(TicketStatus.EXECUTING)
        else:
            self._set_status(TicketStatus.REJECTED)

    def _on_cancel(self) -> None:
        """A cancel request before the ticket's end was decided: hand it to a human (ESCALATED),
        never leave it hanging. After a decision, the decided end is carried out."""
        self._accepting_decisions = False
        if self._status.terminal or self._status == TicketStatus.EXECUTING:
            return
        if self._decision is not None:  # decided in the same task as the cancel arrived
            self._set_status(
                TicketStatus.EXECUTING if self._decision.approved else TicketStatus.REJECTED
            )
            return
        self._mark_escalated(f"cancelled by an operator while {self._status.value}")

    async def _conclude(self) -> TicketOutcome:
        """Carry out the decided end. Safe to run again after an interruption: every step is
        skipped once its receipt is in the state, and the ledger is idempotent by ticket_id."""
        if (
            self._status == TicketStatus.EXECUTING
            and needs_refund(self._classification)
            and self._refund is None
        ):
            assert self._classification is not None
            try:
                self._refund = await self._side_effect(
                    names.ISSUE_REFUND,
                    IssueRefundInput(
                        ticket_id=self._ticket.ticket_id,
                        customer_id=self._ticket.customer_id,
                        order_id=self._ticket.order_id,
                        amount_cents=self._classification.refund_cents or 0,
                    ),
                    RefundReceipt,
                )
            except ActivityError as err:
                if _is_cancel(err) and workflow.patched(PATCH_ROBUST_ENDS):
                    raise
                # A non-retryable ledger error (side effects retry forever otherwise).
                self._mark_escalated(f"refund failed: {_describe_failure(err)}")
        if self._status == TicketStatus.EXECUTING:
            if self._reply is None:
                assert self._draft is not None
                self._reply = await self._send_reply(ReplyKind.RESOLUTION, self._draft.text)
            self._set_status(TicketStatus.RESOLVED)
        # Steps, not branches: a refund that failed above escalates, and gets its holding reply.
        if self._reply is None and self._status == TicketStatus.REJECTED:
            self._reply = await self._send_reply(ReplyKind.REJECTION, REJECTION_REPLY)
        if self._reply is None and self._status == TicketStatus.ESCALATED:
            self._reply = await self._send_reply(ReplyKind.ESCALATION, ESCALATION_REPLY)
        return await self._finish()

    # ---- messages --------------------------------------------------------------------------

    @workflow.query(name=names.STATUS_QUERY)
    def status(self) -> TicketState:
        return TicketState(
            **self._facts(),
            accepting_decisions=self._accepting_decisions,
            side_effects_done=self._side_effects_done,
            approval_deadline=self._approval_deadline,
            history=list(self._history),
            # The outcome is the state's only once every final side effect is done.
            outcome=self._final if self._side_effects_done else None,
        )

    @workflow.update(name=names.DECIDE_UPDATE)
    async def decide(self, inp: DecideInput) -> DecideResult:
        decision = Decision(
            approved=inp.approved,
            approver=inp.approver,
            reason=inp.reason,
            decided_at=workflow.now(),
        )
        self._decision = decision
        self._accepting_decisions = False
        # Answer with the status the decision leads to (EXECUTING/REJECTED), not the stale one.
        await workflow.wait_condition(lambda: self._status != TicketStatus.WAITING_APPROVAL)
        return DecideResult(
            ticket_id=self._ticket.ticket_id, status=self._status, decision=decision
        )

    @decide.validator
    def _validate_decide(self, inp: DecideInput) -> None:
        # Rejections here are written nowhere in history.
        if self._decision is not None:
            raise ApplicationError(
                f"ticket {self._ticket.ticket_id} is already decided "
                f"({'approved' if self._decision.approved else 'rejected'} by "
                f"{self._decision.approver})",
                type="AlreadyDecided",
            )
        if self._status != TicketStatus.WAITING_APPROVAL or not self._accepting_decisions:
            raise ApplicationError(
                f"ticket {self._ticket.ticket_id} is not waiting for approval "
                f"(status {self._status.value})",
                type="NotWaitingApproval",
            )
        if self._approval_deadline is not None and workflow.now() >= self._approval_deadline:
            raise ApplicationError(
                f"the approval window of ticket {self._ticket.ticket_id} has closed",
                type="ApprovalWindowClosed",
            )
        if not inp.approver.strip():
            raise ApplicationError("approver must not be empty", type="MalformedDecision")

    # ---- helpers ---------------------------------------------------------------------------

    def _publish_classification(self, classification: Classification) -> None:
        # Visibility (list/describe) shows category, confidence and proposed refund of every
        # ticket, e.g. the approval queue, without a query that needs a worker to replay it.
        if workflow.patched(PATCH_CLASSIFICATION_MEMO):
            workflow.upsert_memo({names.MEMO_CLASSIFICATION: classification})

    def _facts(self) -> dict[str, Any]:
        """What the query and the outcome both report."""
        return {
            "ticket_id": self._ticket.ticket_id,
            "status": self._status,
            "ticket": self._ticket,
            "classification": self._classification,
            "draft": self._draft,
            "decision": self._decision,
            "refund": self._refund,
            "reply": self._reply,
            "escalation_reason": self._escalation_reason,
            "agent_calls": list(self._agent_calls),
        }

    def _set_status(self, status: TicketStatus) -> None:
        self._status = status
        self._history.append(StatusChange(status=status, at=workflow.now()))
        workflow.upsert_search_attributes([TICKET_STATUS.value_set(status.value)])

    async def _call_agent(
        self, activity: str, arg: Any, result_type: type[T], first_tier: ModelTier
    ) -> T | None:
        """Primary, then fallback; None when neither answered within its budget.

        A schedule-to-start timeout on the primary means no primary worker took the call in time
        (overloaded or absent): that is the routing signal. Temporal never retries it, so the
        workflow owns the decision. Exhausted retries of transient errors route the same way.
        """
        p = self._policy
        tiers = [ModelTier.PRIMARY, ModelTier.FALLBACK]
        for tier in tiers[tiers.index(first_tier) :]:
            if tier == ModelTier.PRIMARY:
                queue, s2s, s2c, attempts = (
                    names.AGENT_QUEUE,
                    p.agent_schedule_to_start_s,
                    p.agent_start_to_close_s,
                    p.agent_max_attempts,
                )
            else:
                queue, s2s, s2c, attempts = (
                    names.AGENT_FALLBACK_QUEUE,
                    p.fallback_schedule_to_start_s,
                    p.fallback_start_to_close_s,
                    p.fallback_max_attempts,
                )
            try:
                result = await workflow.execute_activity(
                    activity,
                    arg,
                    task_queue=queue,
                    result_type=result_type,
                    schedule_to_start_timeout=timedelta(seconds=s2s),
                    start_to_close_timeout=timedelta(seconds=s2c),
                    heartbeat_timeout=timedelta(seconds=p.agent_heartbeat_timeout_s),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1),
                        maximum_interval=timedelta(seconds=10),
                        maximum_attempts=attempts,
                        non_retryable_error_types=_AGENT_NON_RETRYABLE,
                    ),
                )
            except ActivityError as err:
                if _is_cancel(err):
                    raise
                reason = _describe_failure(err)
                workflow.logger.warning("agent %s on %s failed: %s", activity, tier.value, reason)
                self._agent_calls.append(
                    AgentCall(activity=activity, tier=tier, ok=False, error=reason)
                )
                if (
                    tier == ModelTier.PRIMARY
                    and isinstance(err.cause, TemporalTimeoutError)
                    and err.cause.type == TimeoutType.SCHEDULE_TO_START
                ):
                    workflow.logger.info("routing %s to the fallback model", activity)
                if _non_retryable(err) and workflow.patched(PATCH_ROBUST_ENDS):
                    # The input itself is refused: another model would refuse it too.
                    return None
                continue
            self._agent_calls.append(AgentCall(activity=activity, tier=tier, ok=True))
            return result
        return None

    async def _side_effect(self, activity: str, arg: Any, result_type: type[T]) -> T:
        """Ledger/outbox effects: idempotent by ticket_id, so retrying forever is safe."""
        return await workflow.execute_activity(
            activity,
            arg,
            task_queue=names.CORE_QUEUE,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=self._policy.side_effect_start_to_close_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=0,
                non_retryable_error_types=_SIDE_EFFECT_NON_RETRYABLE,
            ),
        )

    async def _send_reply(self, kind: ReplyKind, body: str) -> ReplyReceipt | None:
        try:
            return await self._side_effect(
                names.SEND_REPLY,
                SendReplyInput(
                    ticket_id=self._ticket.ticket_id,
                    customer_id=self._ticket.customer_id,
                    kind=kind,
                    body=body,
                ),
                ReplyReceipt,
            )
        except ActivityError as err:
            if _is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                raise
            # Only a non-retryable outbox error gets here. A missing reply must not fail the
            # ticket: the outcome (reply None) is still recorded, for a human to follow up.
            workflow.logger.error(
                "reply for ticket %s failed: %s", self._ticket.ticket_id, _describe_failure(err)
            )
            return None

    def _mark_escalated(self, reason: str) -> None:
        # Terminal status first: from here on no decision is accepted, even while the
        # holding reply and the projection are still running.
        self._accepting_decisions = False
        self._escalation_reason = reason
        self._set_status(TicketStatus.ESCALATED)

    async def _finish(self) -> TicketOutcome:
        # Built once: a projection interrupted by a cancel request is retried with the same
        # outcome (and so the same version in the read model).
        if self._final is None:
            self._final = TicketOutcome(**self._facts(), finished_at=workflow.now())
        outcome = self._final
        # Every end is projected to the read model; the projection worker owns that store.
        await workflow.execute_activity(
            names.RECORD_OUTCOME,
            outcome,
            task_queue=names.PROJECTION_QUEUE,
            start_to_close_timeout=timedelta(seconds=self._policy.side_effect_start_to_close_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=0,
            ),
        )
        self._side_effects_done = True
        return outcome
