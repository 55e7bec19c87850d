"""Fixtures of the contracts tests: the committed schema snapshots and payload fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONTRACTS = Path(__file__).resolve().parent.parent
SCHEMAS = CONTRACTS / "schemas"
PAYLOAD_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"


@pytest.fixture(scope="session")
def snapshots() -> dict[str, dict[str, Any]]:
    """The committed snapshots (libs/contracts/schemas/*.json), by type name."""
    found = {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}
    assert found, f"no snapshots in {SCHEMAS}: run `uv run python scripts/update_schemas.py`"
    return found
