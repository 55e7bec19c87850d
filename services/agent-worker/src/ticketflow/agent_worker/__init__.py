"""ticketflow.agent_worker: the agent activities (classify, draft_reply) and the mock model."""

from .activities import AgentActivities
from .agent import Agent, AgentError, InvalidAgentInputError, TransientModelError
from .mock import MockAgent, format_cents
from .settings import Settings

__all__ = [
    "Agent",
    "AgentActivities",
    "AgentError",
    "InvalidAgentInputError",
    "MockAgent",
    "Settings",
    "TransientModelError",
    "format_cents",
]
