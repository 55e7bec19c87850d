"""Boundary names pinned like payload schemas: a snapshot of every name another process relies on.

A task queue, workflow, activity, update or query name, a search attribute (with its type) or a
memo key is written into histories and polled by workers of other releases. Renaming one in code
passes every other check (replay does not notice a changed task queue), yet a worker of the
previous release then polls a queue nothing schedules to. So the names are snapshotted in
``libs/contracts/names.json`` and compared here: a name may be added, never renamed or removed
(add the new one beside the old, move the workers, retire the old one in a later release).
"""

from __future__ import annotations

import json
from typing import Any

from ticketflow.contracts import boundary, names

__all__ = [
    "NAMES_FIX",
    "NameProblem",
    "added_names",
    "compare_names",
    "current_names",
    "render_names",
]

NAMES_FIX = (
    "add the new name beside the old one (keep registering and scheduling the old one), move the "
    "workers and callers over, and retire the old name only in a later release once nothing in "
    'flight uses it (docs/compatibility.md, "Names")'
)

_KINDS = {
    "task_queues": "task queue",
    "workflows": "workflow",
    "activities": "activity",
    "updates": "update",
    "queries": "query",
    "search_attributes": "search attribute",
    "memo_keys": "memo key",
}


def current_names() -> dict[str, Any]:
    """Today's boundary names, from ``contracts.names`` and the ``contracts.boundary`` registry."""
    return {
        "task_queues": sorted(names.TASK_QUEUES),
        "workflows": sorted(boundary.WORKFLOWS),
        "activities": sorted(boundary.ACTIVITIES),
        "updates": sorted(boundary.UPDATES),
        "queries": sorted(boundary.QUERIES),
        "search_attributes": dict(sorted(names.SEARCH_ATTRIBUTES.items())),
        "memo_keys": sorted(boundary.MEMOS),
    }


def render_names(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


class NameProblem(str):
    """One breaking change to a boundary name, worded for the person who made it."""


def compare_names(old: dict[str, Any], new: dict[str, Any]) -> list[NameProblem]:
    """Breaking changes from the snapshot ``old`` to today's ``new``: removals and type changes."""
    problems: list[NameProblem] = []
    for kind, label in _KINDS.items():
        before, after = old.get(kind, []), new.get(kind, [])
        for name in before:
            if name not in after:
                problems.append(
                    NameProblem(
                        f"{label} {name!r} is gone (renamed or removed); do instead: {NAMES_FIX}"
                    )
                )
        if isinstance(before, dict) and isinstance(after, dict):
            for name, kind_before in before.items():
                if name in after and after[name] != kind_before:
                    problems.append(
                        NameProblem(
                            f"{label} {name!r} changed type {kind_before} -> {after[name]}; do "
                            f"instead: register a new attribute under a new name with the new type "
                            f"and keep writing the old one until nothing lists by it"
                        )
                    )
    return problems


def added_names(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names in ``new`` that the snapshot does not have yet (compatible, but the snapshot is stale)."""
    return [
        f"{label} {name!r}"
        for kind, label in _KINDS.items()
        for name in new.get(kind, [])
        if name not in old.get(kind, [])
    ]
