"""Refresh the compatibility snapshots: boundary payload schemas (libs/contracts/schemas/) and
boundary names (libs/contracts/names.json).

    uv run python scripts/update_schemas.py           # after a compatible change: rewrite snapshots
    uv run python scripts/update_schemas.py --check   # only report (exit 1 if anything is stale)

Refuses (exit 1, nothing written) when today's models break compatibility with the committed
snapshots, when a model's schema changed but its SCHEMA_VERSION was not bumped, and when a boundary
name (task queue, workflow, activity, update, query, search attribute, memo key) was renamed or
removed. So a snapshot
only ever moves forward through a compatible change. The same comparison runs in the test suite
(libs/contracts/tests/test_schema_snapshots.py, `uv run pytest -m compat`); rules in
docs/compatibility.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ticketflow.testkit.compat.names import (
    added_names,
    compare_names,
    current_names,
    render_names,
)
from ticketflow.testkit.compat.schema_rules import compare, format_problems
from ticketflow.testkit.compat.schemas import current_schemas, render, stale

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "libs" / "contracts" / "schemas"
NAMES = ROOT / "libs" / "contracts" / "names.json"


def load(directory: Path = SCHEMAS) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only, write nothing")
    args = parser.parse_args(argv)

    old_names = json.loads(NAMES.read_text()) if NAMES.exists() else {}
    new_names = current_names()
    name_problems = compare_names(old_names, new_names)
    if name_problems:
        print("\n".join(name_problems) + "\n\nnothing written", file=sys.stderr)
        return 1

    old, new = load(), current_schemas()
    problems = compare(old, new)
    if problems:
        print(format_problems(problems, against=str(SCHEMAS.relative_to(ROOT))), file=sys.stderr)
        print("\nnothing written", file=sys.stderr)
        return 1
    reasons = stale(old, new) + [
        f"new {name}: not in {NAMES.relative_to(ROOT)} yet"
        for name in added_names(old_names, new_names)
    ]
    unbumped = [r for r in reasons if "SCHEMA_VERSION" in r]
    if unbumped:
        print("\n".join(unbumped) + "\n\nnothing written", file=sys.stderr)
        return 1
    if args.check:
        print("\n".join(reasons) if reasons else "snapshots up to date", file=sys.stderr)
        return 1 if reasons else 0

    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for name, schema in new.items():
        path = SCHEMAS / f"{name}.json"
        text = render(schema)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    names_text = render_names(new_names)
    if not NAMES.exists() or NAMES.read_text() != names_text:
        NAMES.write_text(names_text)
        print(f"wrote {NAMES.relative_to(ROOT)}")
    if not reasons:
        print("snapshots already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
