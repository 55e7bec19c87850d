"""Temporal activities ``classify`` and ``draft_reply``: one model call each, heartbeating during it.

A model call can take seconds. A background loop heartbeats every ``heartbeat_timeout / 3`` while it
runs, so Temporal can tell a slow call from a dead worker, and so a cancellation (which Temporal
delivers only to heartbeating activities) reaches the call and aborts it.

Error mapping (``ApplicationError.type``):
- ``TransientModelError`` -> retryable; the workflow's retry policy decides how often.
- ``InvalidAgentInput``   -> non-retryable; the same input can never succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError
from ticketflow.contracts import Classification, ClassifyInput, Draft, DraftReplyInput, names
from ticketflow.runtime import metrics

from .agent import Agent, InvalidAgentInputError, TransientModelError

__all__ = [
    "DEFAULT_HEARTBEAT_PERIOD_S",
    "INVALID_INPUT_ERROR_TYPE",
    "MIN_HEARTBEAT_PERIOD_S",
    "TRANSIENT_ERROR_TYPE",
    "AgentActivities",
    "heartbeat_period",
]

TRANSIENT_ERROR_TYPE = "TransientModelError"
INVALID_INPUT_ERROR_TYPE = "InvalidAgentInput"
MIN_HEARTBEAT_PERIOD_S = 0.05
# Without a heartbeat timeout nobody watches liveness, but heartbeats still carry cancellation.
DEFAULT_HEARTBEAT_PERIOD_S = 1.0

_T = TypeVar("_T")


def heartbeat_period(heartbeat_timeout: timedelta | None) -> float:
    """Seconds between heartbeats: a third of the timeout, so two can be lost, never under 50 ms."""
    if not heartbeat_timeout or heartbeat_timeout <= timedelta(0):
        return DEFAULT_HEARTBEAT_PERIOD_S
    return max(heartbeat_timeout.total_seconds() / 3, MIN_HEARTBEAT_PERIOD_S)


async def _heartbeat_forever(period: float, detail: str) -> None:
    while True:
        await asyncio.sleep(period)
        activity.heartbeat(detail)


class AgentActivities:
    """The agent activities of one model tier; register both methods on a worker."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    @activity.defn(name=names.CLASSIFY)
    async def classify(self, inp: ClassifyInput) -> Classification:
        result = await self._model_call(
            names.CLASSIFY,
            lambda attempt: self.agent.classify(inp.ticket, attempt=attempt),
        )
        activity.logger.info(
            "classified ticket %s: %s (confidence %.2f, action %s, model %s)",
            inp.ticket.ticket_id,
            result.category.value,
            result.confidence,
            result.action.value,
            result.model,
        )
        return result

    @activity.defn(name=names.DRAFT_REPLY)
    async def draft_reply(self, inp: DraftReplyInput) -> Draft:
        result = await self._model_call(
            names.DRAFT_REPLY,
            lambda attempt: self.agent.draft_reply(inp.ticket, inp.classification, attempt=attempt),
        )
        activity.logger.info(
            "drafted reply for ticket %s (%d chars, model %s)",
            inp.ticket.ticket_id,
            len(result.text),
            result.model,
        )
        return result

    async def _model_call(self, call: str, start: Callable[[int], Awaitable[_T]]) -> _T:
        info = activity.info()
        heartbeats = asyncio.create_task(
            _heartbeat_forever(heartbeat_period(info.heartbeat_timeout), call),
            name=f"heartbeat-{call}-{info.activity_id}",
        )
        result = "error"
        try:
            answer = await start(info.attempt)
            result = "ok"
            return answer
        except TransientModelError as err:
            result = "transient_error"
            activity.logger.warning("%s attempt %d failed, retryable: %s", call, info.attempt, err)
            raise ApplicationError(str(err), type=TRANSIENT_ERROR_TYPE) from err
        except InvalidAgentInputError as err:
            result = "invalid_input"
            activity.logger.error("%s cannot succeed: %s", call, err)
            raise ApplicationError(
                str(err), type=INVALID_INPUT_ERROR_TYPE, non_retryable=True
            ) from err
        except asyncio.CancelledError:
            result = "cancelled"
            activity.logger.info("%s cancelled during the model call", call)
            raise
        finally:
            tier = "fallback" if info.task_queue == names.AGENT_FALLBACK_QUEUE else "primary"
            metrics.count(
                activity.metric_meter(),
                metrics.AGENT_CALLS,
                activity=call,
                tier=tier,
                result=result,
            )
            heartbeats.cancel()
            # Reap the loop: it never outlives the call, and its own failure is logged, not lost.
            await asyncio.wait({heartbeats})
            if not heartbeats.cancelled() and (hb_err := heartbeats.exception()):
                activity.logger.warning("%s heartbeat loop failed: %r", call, hb_err)
