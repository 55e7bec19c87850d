"""The compatibility rules, proven on changes made in memory to real models.

Each case rebuilds one model (or enum) under its own name with one change, puts its schema in place
of today's, and compares today's schemas (as the "snapshots") with the changed ones: the check a
pull request meets, independent of the state of the committed snapshots. Every breaking change must
be reported with the model, the field and what to do instead; every allowed change must pass (and
then only needs its snapshot refreshed and its SCHEMA_VERSION bumped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import pytest
from pydantic import ConfigDict, Field, StringConstraints, create_model
from ticketflow.contracts import models
from ticketflow.contracts.models import Payload
from ticketflow.testkit.compat.schema_rules import FIXES, compare, format_problems
from ticketflow.testkit.compat.schemas import Schemas, current_schemas, schemas_for, stale

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def snapshots() -> Schemas:
    """Today's schemas stand in for the snapshots: these tests prove the rules, not the models."""
    return current_schemas()


def variant(
    model: type[Payload],
    *,
    drop: tuple[str, ...] = (),
    fields: dict[str, Any] | None = None,
    config: ConfigDict | None = None,
    bump: bool = False,
    doc: str | None = None,
) -> type[Payload]:
    """``model`` rebuilt under its own name: without ``drop``, with ``fields`` added or replaced."""
    spec: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if name not in drop
    }
    spec.update(fields or {})
    base: type[Payload] = (
        model.__bases__[0]
        if config is None
        else type(
            "Base", (Payload,), {"model_config": ConfigDict(**{**Payload.model_config, **config})}
        )
    )
    made = create_model(model.__name__, __base__=base, __doc__=doc or model.__doc__, **spec)
    made.SCHEMA_VERSION = model.SCHEMA_VERSION + (1 if bump else 0)
    return made


def with_type(tp: type) -> Schemas:
    """Today's schemas with ``tp`` in place of the type of the same name."""
    new = current_schemas()
    new.update(schemas_for({tp.__name__: tp}))
    return new


def without(name: str) -> Schemas:
    new = current_schemas()
    del new[name]
    return new


@dataclass(frozen=True)
class Change:
    id: str
    make: Callable[[], Schemas]
    where: str = ""  # Model or Model.field the message must name
    kind: str = ""  # the rule it must report


BREAKING = [
    Change(
        "new required field",
        lambda: with_type(variant(models.Classification, fields={"example_reviewer": (str, ...)})),
        "Classification.example_reviewer",
        "new required field",
    ),
    Change(
        "removed field",
        lambda: with_type(variant(models.Draft, drop=("model",))),
        "Draft.model",
        "removed or renamed field",
    ),
    Change(
        "renamed field",
        lambda: with_type(variant(models.Draft, drop=("text",), fields={"body": (str, "")})),
        "Draft.text",
        "removed or renamed field",
    ),
    Change(
        "changed type int -> str",
        lambda: with_type(variant(models.RefundReceipt, fields={"amount_cents": (str, ...)})),
        "RefundReceipt.amount_cents",
        "changed type",
    ),
    Change(
        "changed type float -> int",
        lambda: with_type(
            variant(models.Classification, fields={"confidence": (int, Field(ge=0, le=1))})
        ),
        "Classification.confidence",
        "changed type",
    ),
    Change(
        "changed type: list item",
        lambda: with_type(variant(models.TicketOutcome, fields={"agent_calls": (list[str], [])})),
        "TicketOutcome.agent_calls",
        "changed type",
    ),
    Change(
        "changed type: nested model replaced",
        lambda: with_type(
            variant(models.TicketInput, fields={"policy": (models.Draft | None, None)})
        ),
        "TicketInput.policy",
        "changed type",
    ),
    Change(
        "optional made non-null",
        lambda: with_type(variant(models.Decision, fields={"reason": (str, "")})),
        "Decision.reason",
        "changed type",
    ),
    Change(
        "default removed",
        lambda: with_type(variant(models.Classification, fields={"tier": (models.ModelTier, ...)})),
        "Classification.tier",
        "default removed",
    ),
    Change(
        "optional made required",
        lambda: with_type(
            variant(models.TicketState, fields={"approval_deadline": (datetime | None, ...)})
        ),
        "TicketState.approval_deadline",
        "default removed",
    ),
    Change(
        "changed default",
        lambda: with_type(
            variant(models.Policy, fields={"confidence_threshold": (float, Field(0.9, ge=0, le=1))})
        ),
        "Policy.confidence_threshold",
        "changed default",
    ),
    Change(
        "enum value removed",
        lambda: with_type(
            StrEnum("Category", {m.name: m.value for m in models.Category if m.value != "billing"})
        ),
        "Category",
        "enum value removed",
    ),
    Change(
        "search attribute value removed",
        lambda: with_type(
            StrEnum(
                "TicketStatus",
                {m.name: m.value for m in models.TicketStatus if m.name != "ESCALATED"},
            )
        ),
        "TicketStatus",
        "enum value removed",
    ),
    Change(
        "narrowed max_length",
        lambda: with_type(
            variant(
                models.NewTicket,
                fields={
                    "subject": (
                        Annotated[str, StringConstraints(min_length=1, max_length=100)],
                        ...,
                    )
                },
            )
        ),
        "NewTicket.subject",
        "narrowed constraint",
    ),
    Change(
        "narrowed minimum",
        lambda: with_type(
            variant(models.Policy, fields={"agent_max_attempts": (int, Field(3, ge=2))})
        ),
        "Policy.agent_max_attempts",
        "narrowed constraint",
    ),
    Change("model removed", lambda: without("Draft"), "Draft", "type removed"),
    Change(
        "unknown fields forbidden",
        lambda: with_type(variant(models.Ticket, config=ConfigDict(extra="forbid"))),
        "Ticket",
        "unknown fields forbidden",
    ),
]

ALLOWED = [
    Change(
        "new optional field",
        lambda: with_type(
            variant(models.TicketState, fields={"example_note": (str | None, None)}, bump=True)
        ),
    ),
    Change(
        "new field with a default",
        lambda: with_type(
            variant(models.Policy, fields={"example_max_replies": (int, 3)}, bump=True)
        ),
    ),
    Change(
        "new list field with a default factory",
        lambda: with_type(
            variant(
                models.TicketOutcome,
                fields={"example_notes": (list[str], Field(default_factory=list))},
                bump=True,
            )
        ),
    ),
    Change(
        "enum value added",
        lambda: with_type(
            StrEnum(
                "Category", {**{m.name: m.value for m in models.Category}, "SHIPPING": "shipping"}
            )
        ),
    ),
    Change(
        "required made optional",
        lambda: with_type(variant(models.Draft, fields={"model": (str | None, None)}, bump=True)),
    ),
    Change(
        "widened int -> float",
        lambda: with_type(
            variant(
                models.Policy, fields={"agent_max_attempts": (float, Field(3, ge=1))}, bump=True
            )
        ),
    ),
    Change(
        "loosened max_length",
        lambda: with_type(
            variant(
                models.NewTicket,
                fields={
                    "subject": (
                        Annotated[str, StringConstraints(min_length=1, max_length=400)],
                        ...,
                    )
                },
                bump=True,
            )
        ),
    ),
    Change(
        "documentation only",
        lambda: with_type(variant(models.Policy, doc="The rules a ticket lives by (reworded).")),
    ),
    Change(
        "new boundary model",
        lambda: {
            **current_schemas(),
            **schemas_for(
                {
                    "ExampleNewModel": create_model(
                        "ExampleNewModel", __base__=Payload, text=(str, "")
                    )
                }
            ),
        },
    ),
]


def test_an_unchanged_rebuild_is_identical() -> None:
    """The harness itself: rebuilding a model with no change must change nothing."""
    for model in (models.Ticket, models.Policy, models.TicketState, models.Classification):
        assert schemas_for({model.__name__: variant(model)}) == schemas_for({model.__name__: model})


@pytest.mark.parametrize("change", BREAKING, ids=lambda c: c.id)
def test_breaking_change_fails_with_model_field_and_fix(
    change: Change, snapshots: dict[str, dict[str, Any]]
) -> None:
    problems = compare(snapshots, change.make())
    assert problems, f"{change.id} was not detected"
    hits = [p for p in problems if p.where == change.where and p.kind == change.kind]
    assert hits, f"{change.id}: expected {change.where}: {change.kind}, got {problems}"
    message = format_problems(problems, against="libs/contracts/schemas/")
    assert f"{change.where}: {change.kind}" in message
    assert f"do instead: {FIXES[change.kind]}" in message
    assert "docs/compatibility.md" in message


@pytest.mark.parametrize("change", ALLOWED, ids=lambda c: c.id)
def test_allowed_change_passes(change: Change, snapshots: dict[str, dict[str, Any]]) -> None:
    problems = compare(snapshots, change.make())
    assert not problems, format_problems(problems, against="libs/contracts/schemas/")


def test_renamed_field_message_suggests_the_rename(snapshots: dict[str, dict[str, Any]]) -> None:
    new = with_type(variant(models.Draft, drop=("text",), fields={"body": (str, "")}))
    (problem,) = compare(snapshots, new)
    assert "renamed to body?" in str(problem)


def test_compatible_change_needs_a_version_bump_and_a_refresh(
    snapshots: dict[str, dict[str, Any]],
) -> None:
    not_bumped = with_type(variant(models.TicketState, fields={"example_note": (str | None, None)}))
    (reason,) = stale(snapshots, not_bumped)
    now = models.TicketState.SCHEMA_VERSION
    assert reason.startswith(f"TicketState: schema changed but SCHEMA_VERSION is still {now}")
    assert f"SCHEMA_VERSION: ClassVar[int] = {now + 1}" in reason and "CHANGELOG.md" in reason

    bumped = with_type(
        variant(models.TicketState, fields={"example_note": (str | None, None)}, bump=True)
    )
    assert stale(snapshots, bumped) == ["TicketState: snapshot out of date"]

    docs_only = with_type(variant(models.Policy, doc="Reworded."))
    assert stale(snapshots, docs_only) == ["Policy: snapshot out of date"]


def test_a_new_model_without_snapshot_is_reported(snapshots: dict[str, dict[str, Any]]) -> None:
    new = {
        **current_schemas(),
        **schemas_for(
            {"ExampleNewModel": create_model("ExampleNewModel", __base__=Payload, text=(str, ""))}
        ),
    }
    assert stale(snapshots, new) == ["ExampleNewModel: no snapshot yet (a new boundary type)"]
