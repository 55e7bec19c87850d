"""Every name that crosses a process boundary.

Workers register, and clients call, workflows, activities, updates and queries by these strings; a
rename here is a breaking change for every workflow in flight, so names are append-only: the
committed snapshot ``libs/contracts/names.json`` pins every one of them, and ``-m compat`` fails on
a rename or removal (docs/compatibility.md, "Names").
"""

from typing import Final

# Task queues (kebab-case).
CORE_QUEUE: Final = "ticketflow"
AGENT_QUEUE: Final = "ticketflow-agent"
AGENT_FALLBACK_QUEUE: Final = "ticketflow-agent-fallback"
PROJECTION_QUEUE: Final = "ticketflow-projection"
TASK_QUEUES: Final = (CORE_QUEUE, AGENT_QUEUE, AGENT_FALLBACK_QUEUE, PROJECTION_QUEUE)

# Workflow, its messages.
TICKET_WORKFLOW: Final = "TicketWorkflow"
DECIDE_UPDATE: Final = "decide"
STATUS_QUERY: Final = "status"

# Activities.
CLASSIFY: Final = "classify"
DRAFT_REPLY: Final = "draft_reply"
ISSUE_REFUND: Final = "issue_refund"
SEND_REPLY: Final = "send_reply"
RECORD_OUTCOME: Final = "record_outcome"
# On the core queue: has this ticket_id reached its end before (the reply outbox)?
CHECK_INTAKE: Final = "check_intake"

# Search attributes (name, Temporal type).
TICKET_STATUS_SA: Final = "TicketStatus"
SEARCH_ATTRIBUTES: Final = {TICKET_STATUS_SA: "Keyword"}

# Memo keys. content_sha256: set at workflow start (str). classification: upserted by the workflow
# once the agent has classified the ticket (a Classification), from workflow version v2 on.
MEMO_CONTENT_SHA256: Final = "content_sha256"
MEMO_CLASSIFICATION: Final = "classification"


def workflow_id(ticket_id: str) -> str:
    """The workflow id of a ticket: the business key, so a second start of it is refused by Temporal."""
    return f"ticket-{ticket_id}"


def ticket_id_from_workflow_id(wf_id: str) -> str | None:
    return wf_id.removeprefix("ticket-") if wf_id.startswith("ticket-") else None
