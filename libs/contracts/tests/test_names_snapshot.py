"""Boundary names are pinned: libs/contracts/names.json against today's names and registries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ticketflow.contracts import boundary, names
from ticketflow.testkit.compat.names import (
    added_names,
    compare_names,
    current_names,
    render_names,
)

pytestmark = pytest.mark.compat

SNAPSHOT = Path(__file__).resolve().parents[1] / "names.json"
REFRESH = "uv run python scripts/update_schemas.py"


@pytest.fixture(scope="module")
def snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def test_no_boundary_name_was_renamed_or_removed(snapshot: dict[str, Any]) -> None:
    problems = compare_names(snapshot, current_names())
    assert not problems, "boundary names changed incompatibly:\n  " + "\n  ".join(problems)


def test_names_snapshot_is_up_to_date(snapshot: dict[str, Any]) -> None:
    new = added_names(snapshot, current_names())
    assert not new, f"names not in {SNAPSHOT.name} yet: {new}; run `{REFRESH}` and commit it"
    assert SNAPSHOT.read_text() == render_names(current_names()), f"run `{REFRESH}`"


def test_every_name_constant_is_in_a_registry() -> None:
    """A new constant in contracts.names that no registry lists would escape the snapshot."""
    snapshot_values = {
        value
        for group in current_names().values()
        for value in (group.keys() if isinstance(group, dict) else group)
    }
    constants = {
        attr: value
        for attr, value in vars(names).items()
        if attr.isupper() and isinstance(value, str)
    }
    unregistered = {attr: v for attr, v in constants.items() if v not in snapshot_values}
    assert not unregistered, (
        f"names.{', names.'.join(unregistered)} not registered: add task queues to "
        "names.TASK_QUEUES, and workflows, activities, updates, queries and memo keys to "
        "contracts.boundary"
    )


def test_a_renamed_task_queue_fails_by_name(
    snapshot: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = names.TASK_QUEUES
    renamed = tuple("ticketflow-core" if q == names.CORE_QUEUE else q for q in original)
    monkeypatch.setattr(names, "TASK_QUEUES", renamed)
    problems = compare_names(snapshot, current_names())
    assert len(problems) == 1
    assert "task queue 'ticketflow' is gone" in problems[0]
    assert "add the new name beside the old one" in problems[0]
    # Adding a name beside the old one is compatible (after a snapshot refresh).
    monkeypatch.setattr(names, "TASK_QUEUES", (*original, "ticketflow-core"))
    assert not compare_names(snapshot, current_names())
    assert added_names(snapshot, current_names()) == ["task queue 'ticketflow-core'"]


def test_renamed_activity_update_query_and_memo_key_fail_by_name(
    snapshot: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def renamed(table: dict[str, Any], old: str) -> dict[str, Any]:
        return {(f"{k}_v2" if k == old else k): v for k, v in table.items()}

    monkeypatch.setattr(boundary, "ACTIVITIES", renamed(boundary.ACTIVITIES, names.ISSUE_REFUND))
    monkeypatch.setattr(boundary, "UPDATES", renamed(boundary.UPDATES, names.DECIDE_UPDATE))
    monkeypatch.setattr(boundary, "QUERIES", renamed(boundary.QUERIES, names.STATUS_QUERY))
    monkeypatch.setattr(boundary, "MEMOS", renamed(boundary.MEMOS, names.MEMO_CLASSIFICATION))
    problems = "\n".join(compare_names(snapshot, current_names()))
    for gone in (
        "activity 'issue_refund'",
        "update 'decide'",
        "query 'status'",
        "memo key 'classification'",
    ):
        assert f"{gone} is gone" in problems


def test_a_search_attribute_type_change_fails(
    snapshot: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(names, "SEARCH_ATTRIBUTES", {names.TICKET_STATUS_SA: "Text"})
    problems = compare_names(snapshot, current_names())
    assert len(problems) == 1
    assert "search attribute 'TicketStatus' changed type Keyword -> Text" in problems[0]
