"""The projection's activity: record a finished ticket's outcome in the read model.

Synchronous (the database calls block), run on the worker's thread pool; several slots may write
at once, which the store serialises (SQLite) or the database's row lock orders (PostgreSQL).
Idempotent and ordered by the store's version rule, so Temporal's retries and late deliveries
change nothing.

A database error fails the attempt retryably (the workflow retries it without limit): a transient
one (``ticketflow.storage.is_transient``: the server restarted, a connection dropped, SQLite busy)
as ``ReadModelUnavailable``, any other as ``ReadModelError``. Either way the failure carries the
driver's one-line message only: SQLAlchemy's own message quotes the statement's parameters, which
hold the outcome (the customer's ticket) and must not reach Temporal's history or a log line.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc
from temporalio import activity
from temporalio.exceptions import ApplicationError
from ticketflow.contracts import names
from ticketflow.contracts.models import TicketOutcome
from ticketflow.storage import describe, is_transient

from .store import ReadModelStore

__all__ = ["TRANSIENT", "UNEXPECTED", "ProjectionActivities", "db_failure"]

TRANSIENT = "ReadModelUnavailable"
UNEXPECTED = "ReadModelError"


def db_failure(err: BaseException) -> ApplicationError:
    """A retryable failure for a database error, with the driver's first line only."""
    reason = describe(err)
    kind = TRANSIENT if is_transient(err) else UNEXPECTED
    return ApplicationError(f"read model write failed ({reason}); retried", type=kind)


class ProjectionActivities:
    def __init__(self, store: ReadModelStore) -> None:
        self._store = store

    @activity.defn(name=names.RECORD_OUTCOME)
    def record_outcome(self, outcome: TicketOutcome) -> bool:
        """True when the read model changed; False for a repeat or an older outcome."""
        info = activity.info()
        try:
            changed = self._store.record(outcome, run_id=info.workflow_run_id or "")
        except (sa_exc.SQLAlchemyError, sqlite3.Error) as err:
            failure = db_failure(err)
            activity.logger.warning(
                "ticket %s (attempt %d): %s", outcome.ticket_id, info.attempt, failure.message
            )
            raise failure from None  # no chained cause: its text quotes the outcome
        activity.logger.info(
            "ticket %s %s (attempt %d): %s",
            outcome.ticket_id,
            outcome.status.value,
            info.attempt,
            "recorded" if changed else "already recorded (same or newer version)",
        )
        return changed
