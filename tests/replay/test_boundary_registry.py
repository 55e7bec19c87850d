"""contracts.boundary tells the truth: it registers exactly what the real workers declare.

Every payload type in a workflow, update, query or activity signature is snapshotted and checked
(libs/contracts/tests/). This test is what makes a new activity or a changed signature without a
registry entry (and so without a snapshot) fail.
"""

from __future__ import annotations

import pytest
from temporalio import activity, workflow
from ticketflow.agent_worker.activities import AgentActivities
from ticketflow.contracts.boundary import ACTIVITIES, QUERIES, UPDATES, WORKFLOWS
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.projection.activities import ProjectionActivities

pytestmark = pytest.mark.compat

WORKFLOW_CLASSES = [TicketWorkflow]
ACTIVITY_CLASSES = [SideEffectActivities, AgentActivities, ProjectionActivities]
FIX = "update ticketflow.contracts.boundary, then run `uv run python scripts/update_schemas.py`"


def _single(types: list | None, what: str) -> type | None:
    assert types is not None, f"{what}: parameters need type annotations"
    assert len(types) <= 1, f"{what}: one payload model per call, got {types}"
    return types[0] if types else None


def test_workflows_updates_and_queries_are_registered() -> None:
    for cls in WORKFLOW_CLASSES:
        defn = workflow._Definition.must_from_class(cls)
        declared = (_single(defn.arg_types, defn.name), defn.ret_type)
        assert WORKFLOWS.get(defn.name) == declared, f"workflow {defn.name}: {declared}; {FIX}"
        for name, update in defn.updates.items():
            got = (_single(update.arg_types, name), update.ret_type)
            assert UPDATES.get(name) == got, f"update {name}: {got}; {FIX}"
        for name, query in defn.queries.items():
            got = (_single(query.arg_types, name), query.ret_type)
            assert QUERIES.get(name) == got, f"query {name}: {got}; {FIX}"


def test_activities_are_registered() -> None:
    declared: dict[str, tuple] = {}
    for cls in ACTIVITY_CLASSES:
        for attr in vars(cls).values():
            defn = activity._Definition.from_callable(attr) if callable(attr) else None
            if defn is not None and defn.name:
                declared[defn.name] = (_single(defn.arg_types, defn.name), defn.ret_type)
    assert declared == ACTIVITIES, f"activities declared by the workers: {declared}; {FIX}"
