"""Old-shape payloads, exactly as Temporal stored them, decode into today's models.

Each fixture under fixtures/payloads/<Type>/ holds one payload as it sits in a history (``metadata``
with ``encoding: json/plain``, ``data``, both base64), frozen from the replay corpus by
``scripts/freeze_payload_fixtures.py`` and never rewritten. They are decoded through the real data
converter (``DATA_CONVERTER.payload_converter.from_payloads``), the same call a worker makes when it
replays a history or receives an activity result.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import ParseDict
from pydantic import BaseModel, create_model
from temporalio.api.common.v1 import Payload as TemporalPayload
from ticketflow.contracts import DATA_CONVERTER, models
from ticketflow.contracts.boundary import (
    ACTIVITIES,
    MEMOS,
    SEARCH_ATTRIBUTE_VALUES,
    UPDATES,
    WORKFLOWS,
)
from ticketflow.testkit.compat.schemas import schema_types

pytestmark = pytest.mark.compat

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"
FILES = sorted(FIXTURES.glob("*/*.json"))


def load(path: Path) -> tuple[dict[str, Any], TemporalPayload]:
    fixture = json.loads(path.read_text())
    return fixture, ParseDict(fixture["payload"], TemporalPayload())


def assert_preserved(old: Any, new: Any, where: str) -> None:
    """``old`` survives in ``new``: same scalars, dict keys a subset (where the model knows them)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key in new:
                assert_preserved(value, new[key], f"{where}.{key}")
        return
    if isinstance(old, list) and isinstance(new, list):
        assert len(old) == len(new), f"{where}: {len(old)} items written, {len(new)} read back"
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            assert_preserved(a, b, f"{where}[{i}]")
        return
    assert old == new, f"{where}: written {old!r}, read back {new!r}"


def decode(payload: TemporalPayload, tp: type) -> Any:
    return DATA_CONVERTER.payload_converter.from_payloads([payload], [tp])[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_old_payload_decodes_into_todays_model(path: Path) -> None:
    fixture, payload = load(path)
    assert payload.metadata["encoding"] == b"json/plain"
    assert json.loads(payload.data) == fixture["decoded"], "fixture's `decoded` drifted from data"
    tp = schema_types()[fixture["type"]]
    assert path.parent.name == tp.__name__

    value = decode(payload, tp)

    assert isinstance(value, tp)
    if isinstance(value, BaseModel):
        # Every field the old writer wrote is read back unchanged, at every depth; fields added
        # since (with defaults) may appear, fields today's model does not know are ignored.
        assert_preserved(fixture["decoded"], value.model_dump(mode="json"), tp.__name__)
        # And today's writer can write it again in a shape today's reader takes.
        again = DATA_CONVERTER.payload_converter.to_payloads([value])
        assert decode(again[0], tp) == value


def stored_types() -> set[type]:
    """Every model or enum a history holds (queries and api requests are not stored)."""
    pairs = [*WORKFLOWS.values(), *ACTIVITIES.values(), *UPDATES.values()]
    found = {tp for pair in pairs for tp in pair}
    found |= set(MEMOS.values()) | set(SEARCH_ATTRIBUTE_VALUES.values())
    return {tp for tp in found if isinstance(tp, type) and issubclass(tp, BaseModel | enum.Enum)}


def test_every_stored_type_has_an_old_shape_fixture() -> None:
    have = {p.parent.name for p in FILES}
    missing = sorted(tp.__name__ for tp in stored_types() if tp.__name__ not in have)
    assert not missing, (
        f"no payload fixture for {missing}: capture histories that carry it "
        "(`uv run python scripts/capture_histories.py`), then freeze samples with "
        "`uv run python scripts/freeze_payload_fixtures.py --version <version>`"
    )


def test_unknown_fields_from_a_newer_writer_are_ignored() -> None:
    fixture, payload = load(FIXTURES / "Classification" / "newer-writer-unknown-fields.json")
    assert "sentiment" in fixture["decoded"]
    value = decode(payload, models.Classification)
    assert not hasattr(value, "sentiment") and value.category == models.Category.REFUND


def _classification_with(**fields: Any) -> type[BaseModel]:
    spec: dict[str, Any] = {
        n: (f.annotation, f) for n, f in models.Classification.model_fields.items()
    }
    spec.update(fields)
    return create_model("Classification", __base__=models.Payload, **spec)


def test_a_new_required_field_breaks_old_payloads_through_the_converter() -> None:
    """What the schema check prevents: the same failure a replay reports as 'Failed decoding'."""
    _, payload = load(FIXTURES / "Classification" / "v1-approval-activity-classify-result.json")
    with pytest.raises(Exception, match="reviewer"):
        decode(payload, _classification_with(reviewer=(str, ...)))


def test_a_new_field_with_a_default_reads_old_payloads() -> None:
    _, payload = load(FIXTURES / "Classification" / "v1-approval-activity-classify-result.json")
    value = decode(payload, _classification_with(reviewer=(str | None, None)))
    assert value.reviewer is None and value.model == "fake-primary"
