"""Patch ids of TicketWorkflow's versions (docs/compatibility.md; docs/architecture.md, "The
ticket workflow").

Patch ids are written into histories: never rename or reuse one. A history of an older version
replays with the behaviour it ran with, because ``workflow.patched(id)`` is False for it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PATCH_CLASSIFICATION_MEMO",
    "PATCH_INTAKE_CHECK",
    "PATCH_LEAN_TICKET",
    "PATCH_PRIMARY_RECHECK",
    "PATCH_ROBUST_ENDS",
]

# v2: after classify, the classification is upserted into the memo.
PATCH_CLASSIFICATION_MEMO: Final = "classification-memo"
# v3: a cancel request escalates (before a decision) or completes (after one) the ticket instead of
# ending the workflow; input the primary refuses as non-retryable escalates without the fallback;
# a non-retryable reply failure no longer fails the ticket. v1/v2 histories keep their behaviour.
PATCH_ROBUST_ENDS: Final = "v3-robust-ends"
# v4: a fallback answer that looks auto-approvable is asked of the primary again (with the budget
# Policy.primary_recheck_schedule_to_start_s) before a human sees it; the primary's answer, if it
# comes in time, decides. Only tickets whose answer came from the fallback carry the marker.
PATCH_PRIMARY_RECHECK: Final = "v4-primary-recheck"
# v5: a ticket the api accepted without the read model (``TicketInput.intake_check``) first asks the
# core worker's reply outbox whether its id already reached its end (activity ``check_intake``),
# and if so ends as a duplicate that did nothing. Called only when the flag is set, so a history
# without the flag carries no marker and has v4's commands.
PATCH_INTAKE_CHECK: Final = "v5-intake-check"
# v6: less server work per ticket, same outcomes (docs/architecture.md, "The ticket workflow"):
# the TicketStatus search attribute is upserted once per workflow task, with the status the ticket
# then waits in (statuses passed through within one task are never listed; the query still shows
# each), and the refund and the reply run as local activities in the workflow's own task, so
# neither costs an activity task and a workflow-task round trip. Every v6 history carries it.
PATCH_LEAN_TICKET: Final = "v6-lean-ticket"
