"""The seam between the activities and a model: the ``Agent`` protocol and its errors.

Errors a model client raises (the activities map them to Temporal ``ApplicationError``)::

    AgentError                  base; anything else escaping a model client is a bug
    ├── TransientModelError     retryable: rate limited, overloaded, timed out, connection reset
    └── InvalidAgentInputError  not retryable: the same input can never succeed

A real model client replaces ``MockAgent`` by implementing ``Agent``; nothing else changes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ticketflow.contracts import Classification, Draft, ModelTier, Ticket

__all__ = ["Agent", "AgentError", "InvalidAgentInputError", "TransientModelError"]


class AgentError(Exception):
    """Base of every error an ``Agent`` raises on purpose."""


class TransientModelError(AgentError):
    """The provider failed in a way that a later attempt may not (Temporal retries it)."""


class InvalidAgentInputError(AgentError):
    """The input can never produce an answer; retrying is pointless."""


@runtime_checkable
class Agent(Protocol):
    """A model that classifies tickets and drafts replies.

    ``attempt`` is Temporal's attempt number of the activity (1 on the first try). A real client may
    ignore it; the mock uses it so injected failures are exactly repeatable.
    """

    name: str
    """Model identifier recorded in every answer (``Classification.model``, ``Draft.model``)."""
    tier: ModelTier

    async def classify(self, ticket: Ticket, *, attempt: int = 1) -> Classification: ...

    async def draft_reply(
        self, ticket: Ticket, classification: Classification, *, attempt: int = 1
    ) -> Draft: ...
