"""Opening the ledger store for the worker and for ``ticketflow-core-worker migrate``: the schema
policy at start, and failures told as what to do next."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from ticketflow.runtime import ServiceError
from ticketflow.storage import SchemaMismatch

from ._store import MIGRATIONS, LedgerStore
from .settings import Settings

__all__ = ["migrate", "open_for_worker", "unreachable"]


def unreachable(store: LedgerStore, err: SQLAlchemyError) -> ServiceError:
    """A store that did not answer: say which (password masked) and what to check."""
    cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
    return ServiceError(
        f"cannot use the ledger at {store.shown}: {cause}; check that the database server runs "
        "and accepts connections there, and TICKETFLOW_LEDGER_URL (host, port, user, password, "
        "database)"
    )


def migrate(store: LedgerStore) -> str:
    """Migrate ``store`` to head; the progress line to print. Raises ServiceError."""
    try:
        before, after = store.migrate()
    except SchemaMismatch as err:
        raise ServiceError(str(err)) from err
    except SQLAlchemyError as err:
        raise unreachable(store, err) from err
    if before == after:
        return f"the ledger at {store.shown} is already at schema revision {after}"
    return f"migrated the ledger at {store.shown} from {before or 'no schema'} to {after}"


def open_for_worker(settings: Settings) -> tuple[LedgerStore, str]:
    """The store with its schema at head, and a line saying so; raises ServiceError if it is
    unreachable or behind and not allowed to migrate (``TICKETFLOW_MIGRATE_ON_START``)."""
    store = LedgerStore(
        settings.ledger_store_url, connections=settings.core_max_concurrent_activities
    )
    try:
        if settings.ledger_migrates_on_start:
            return store, migrate(store)
        try:
            store.require_current()
        except SchemaMismatch as err:
            raise ServiceError(str(err)) from err
        except SQLAlchemyError as err:
            raise unreachable(store, err) from err
        return store, f"the ledger at {store.shown} is at schema revision {MIGRATIONS.head}"
    except BaseException:
        store.close()
        raise
