"""What the projection's tests compare read models by."""

from __future__ import annotations

import dataclasses

from sqlalchemy import inspect
from ticketflow.projection.store import ReadModelStore, StoredOutcome


def table(store: ReadModelStore) -> dict[str, StoredOutcome]:
    """The view's rows by ticket, without the bookkeeping columns (recorded_at, seq): two views
    with the same content compare equal however and whenever they were written."""
    return {r.ticket_id: dataclasses.replace(r, recorded_at="", seq=0) for r in store.rows()}


def leftovers(store: ReadModelStore) -> list[str]:
    """What a rebuild left next to the view: work files (SQLite) or work tables (PostgreSQL)."""
    if store.sqlite:
        return sorted(p.name for p in store.path.parent.iterdir() if ".rebuild-" in p.name)
    return sorted(t for t in inspect(store.engine).get_table_names() if "_rebuild_" in t)
