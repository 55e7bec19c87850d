"""Today's boundary models against their committed JSON-schema snapshots (libs/contracts/schemas/).

The gate of "payloads outlive code": a breaking change fails here with the model, the field and
what to do instead; a compatible one fails only until its snapshot is refreshed with
`uv run python scripts/update_schemas.py` (and the model's SCHEMA_VERSION bumped).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from ticketflow.contracts import models
from ticketflow.contracts.boundary import BOUNDARY_MODELS, boundary_types
from ticketflow.testkit.compat.schema_rules import compare, format_problems
from ticketflow.testkit.compat.schemas import current_schemas, schema_types, stale

pytestmark = pytest.mark.compat

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
REFRESH = "uv run python scripts/update_schemas.py"


def test_no_breaking_change_against_the_snapshots(snapshots: dict[str, dict[str, Any]]) -> None:
    problems = compare(snapshots, current_schemas())
    assert not problems, format_problems(problems, against="libs/contracts/schemas/")


def test_snapshots_are_up_to_date(snapshots: dict[str, dict[str, Any]]) -> None:
    reasons = stale(snapshots, current_schemas())
    assert not reasons, (
        "the schema snapshots in libs/contracts/schemas/ do not match today's models:\n  "
        + "\n  ".join(reasons)
        + f"\nIf the change is compatible, run `{REFRESH}` and commit the snapshots with it "
        "(the command refuses breaking changes). See docs/compatibility.md."
    )


def test_every_payload_model_crosses_a_registered_boundary() -> None:
    """A new model must be registered in contracts.boundary (and so get a snapshot)."""
    defined = {
        name
        for name, obj in inspect.getmembers(models, inspect.isclass)
        if issubclass(obj, models.Payload)
        # Bases that only declare shared fields; their subclasses are the payloads.
        and obj not in (models.Payload, models.TicketFacts)
    }
    missing = sorted(defined - schema_types().keys())
    assert not missing, (
        f"payload models not reachable from ticketflow.contracts.boundary: {missing}. Register "
        f"each where it crosses a boundary (WORKFLOWS, ACTIVITIES, ...), then run `{REFRESH}`."
    )


def test_boundary_models_are_payloads() -> None:
    """Payload gives extra='ignore' (old readers of new payloads) and SCHEMA_VERSION."""
    for tp in boundary_types():
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            assert issubclass(tp, models.Payload), f"{tp.__name__} must extend Payload"
    assert BOUNDARY_MODELS, "the registry is empty"


def test_every_schema_version_is_in_the_changelog() -> None:
    text = CHANGELOG.read_text()
    mentioned = {(m[0], int(m[1])) for m in re.findall(r"`(\w+)` v(\d+)", text)}
    missing = [
        f"`{name}` v{tp.SCHEMA_VERSION}"
        for name, tp in schema_types().items()
        if issubclass(tp, BaseModel) and (name, tp.SCHEMA_VERSION) not in mentioned
    ]
    assert not missing, (
        f"libs/contracts/CHANGELOG.md does not say what changed in: {', '.join(missing)}. "
        "Add a line like '- `Model` v2: new optional field `x` (default None)'."
    )
