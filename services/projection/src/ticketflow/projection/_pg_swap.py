"""Rebuild's table swap on PostgreSQL: a fresh table like ``outcomes``, then a rename in its place.

The rename runs in the transaction that holds ``outcomes`` in ACCESS EXCLUSIVE mode (store.py,
``swap_in``). A reader or writer waiting for that lock looks the name up again once it is granted
(PostgreSQL re-resolves a relation whose name changed while it waited), so it then uses the new
table: nobody sees a half-built view, and no write lands in the dropped table.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["create_like", "drop_table", "replace_table"]


def create_like(conn: Connection, table: str, *, like: str) -> None:
    """``table``: empty, with ``like``'s columns, constraints and indexes."""
    conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(text(f"CREATE TABLE {table} (LIKE {like} INCLUDING ALL)"))


def drop_table(conn: Connection, table: str) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def _indexes(conn: Connection, table: str) -> dict[tuple[str, bool], str]:
    """(indexed column numbers, unique) -> index name, for each index of ``table``."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname, i.indkey::text, i.indisunique
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = CAST(:table AS regclass)
            """
        ),
        {"table": table},
    ).all()
    return {(keys, unique): name for name, keys, unique in rows}


def replace_table(conn: Connection, old: str, new: str) -> None:
    """Drop ``old`` and give ``new`` its name and its indexes' names (a primary key's index
    renames its constraint too). ``new`` was made ``create_like(old)``: same columns in the same
    order, so an index of one matches the other's by its column numbers."""
    old_names = _indexes(conn, old)
    new_names = _indexes(conn, new)
    conn.execute(text(f"DROP TABLE {old}"))
    conn.execute(text(f"ALTER TABLE {new} RENAME TO {old}"))
    for key, name in new_names.items():
        target = old_names.get(key)
        if target is not None and target != name:
            conn.execute(text(f"ALTER INDEX {name} RENAME TO {target}"))
