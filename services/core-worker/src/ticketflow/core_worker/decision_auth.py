"""Hands the core worker's decision verifier to the `decide` validator (docs/architecture.md, "The
ticket workflow").

The keys are a worker secret, not workflow input: they must never be in a history, and the
workflow code must not read files or the environment. So the worker, at start, registers the
verifier as a sandbox *extern function* (the SDK's channel from worker to workflow code, through
``Interceptor.workflow_interceptor_class``); the validator looks it up by ``VERIFY_DECISION``.

It stays deterministic: the check is a pure HMAC over the update's input, and it runs only in the
validator, which Temporal never runs on replay (an accepted update is in history; a refused one is
not). A worker built without this interceptor has no verifier, and the validator then refuses every
human decision: a missing piece fails closed.
"""

from __future__ import annotations

from temporalio.worker import Interceptor, WorkflowInboundInterceptor, WorkflowInterceptorClassInput
from ticketflow.contracts.decision_signing import DecisionVerifier

__all__ = ["VERIFY_DECISION", "DecisionAuth"]

# The extern function's name: (ticket_id, DecideInput) -> None when vouched for, else why not.
VERIFY_DECISION = "ticketflow.verify_decision"


class DecisionAuth(Interceptor):
    """Worker interceptor that gives the ticket workflow ``verifier`` (no per-call behaviour)."""

    def __init__(self, verifier: DecisionVerifier) -> None:
        self.verifier = verifier

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        input.unsafe_extern_functions[VERIFY_DECISION] = self.verifier.problem
        return None
