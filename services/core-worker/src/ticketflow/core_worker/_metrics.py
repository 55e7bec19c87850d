"""The ticket workflow's metrics (names in ``ticketflow.runtime.metrics``).

Workflow code: recorded through ``workflow.metric_meter()``, which records nothing while the
workflow replays (a worker restart, a cache eviction, a query on an evicted workflow), so each
ticket counts once. It emits no command: history, and so the replay corpus, are unchanged.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts.models import ModelTier, TicketFacts
    from ticketflow.runtime import metrics

__all__ = ["approval_waited", "fallback_routed", "ticket_finished"]


def _path(facts: TicketFacts) -> str:
    """Who decided: ``auto`` (policy), ``human``, or ``none`` (escalated before a decision)."""
    if facts.decision is None:
        return "none"
    return "auto" if facts.decision.auto else "human"


def _tier(facts: TicketFacts) -> str:
    """Which model answered: ``fallback`` when the ticket used its answer, else ``primary``."""
    answers = [a for a in (facts.classification, facts.draft) if a is not None]
    if not answers:
        return "none"
    return "fallback" if any(a.tier == ModelTier.FALLBACK for a in answers) else "primary"


def ticket_finished(facts: TicketFacts) -> None:
    meter = workflow.metric_meter()
    status, path = facts.status.value, _path(facts)
    metrics.count(meter, metrics.TICKETS_FINISHED, status=status, path=path, tier=_tier(facts))
    # By path too: a human's hours would hide the seconds of the tickets nobody waits for.
    elapsed = workflow.now() - workflow.info().start_time
    metrics.observe_duration(meter, metrics.TICKET_DURATION, elapsed, status=status, path=path)


def approval_waited(facts: TicketFacts, since: datetime) -> None:
    result = "timed_out" if facts.decision is None else "decided"
    metrics.observe_duration(
        workflow.metric_meter(), metrics.APPROVAL_WAIT, workflow.now() - since, result=result
    )


def fallback_routed(activity: str, reason: str) -> None:
    metrics.count(
        workflow.metric_meter(), metrics.FALLBACK_ROUTINGS, activity=activity, reason=reason
    )
