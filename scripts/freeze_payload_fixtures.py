"""Freeze payloads from the replay corpus as old-shape fixtures of the contracts tests.

    uv run python scripts/freeze_payload_fixtures.py --version v1

Reads tests/replay/histories/TicketWorkflow/<version>-*.json and writes one fixture per boundary
type and place (plus every workflow result, one per path) to
``libs/contracts/tests/fixtures/payloads/<Type>/<version>-<case>-<place>.json``: the payload
exactly as Temporal stored it (``metadata.encoding`` = base64 of ``json/plain``, ``data`` = base64
of the JSON), its source, and the decoded JSON for reviewers. Fixtures are frozen: a fixture file
that exists is never rewritten (an old shape must stay old), and places already frozen from an
earlier version are skipped. libs/contracts/tests/test_old_payloads.py decodes every fixture with
today's models through the real data converter.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from temporalio.client import WorkflowHistory
from ticketflow.contracts import names
from ticketflow.contracts.history import history_payloads

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "tests" / "replay" / "histories" / names.TICKET_WORKFLOW
FIXTURES = ROOT / "libs" / "contracts" / "tests" / "fixtures" / "payloads"
# The richest paths first, so the first sample of a place carries the most fields.
PREFERRED = ["approval", "fallback", "small-refund", "rejection", "approval-timeout"]
# Every path ends in a different shape: one sample of the workflow result per path.
ONE_PER_CASE = {f"workflow {names.TICKET_WORKFLOW} result"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="workflow version of the histories")
    args = parser.parse_args(argv)

    files = sorted(HISTORIES.glob(f"{args.version}-*.json"))
    if not files:
        print(f"no histories {HISTORIES}/{args.version}-*.json", file=sys.stderr)
        return 1
    rank = {case: i for i, case in enumerate(PREFERRED)}
    files.sort(key=lambda p: (rank.get(p.stem.split("-", 1)[1], len(rank)), p.name))

    frozen: set[tuple[str, ...]] = set()
    for p in FIXTURES.glob("*/*.json"):
        fixture = json.loads(p.read_text())
        frozen.add((p.parent.name, fixture["place"]))
        frozen.add((p.parent.name, fixture["place"], fixture["case"]))
    written = 0
    for path in files:
        case = path.stem.split("-", 1)[1]
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        for item in history_payloads(history.events):
            tp = item.type
            if tp.__module__ == "builtins":
                continue  # str / bool: nothing to evolve
            key: tuple[str, ...] = (tp.__name__, item.where)
            if item.where in ONE_PER_CASE:
                key = (*key, case)
            if key in frozen:
                continue
            target = FIXTURES / tp.__name__ / f"{args.version}-{case}-{slug(item.where)}.json"
            if target.exists():
                continue
            frozen.add(key)
            payload = MessageToDict(item.payload)
            fixture = {
                "type": tp.__name__,
                "schema_version": getattr(tp, "SCHEMA_VERSION", None),
                "place": item.where,
                "case": case,
                "source": f"{path.relative_to(ROOT)} event {item.event_id}",
                "payload": payload,
                "decoded": json.loads(base64.b64decode(payload.get("data", ""))),
            }
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(fixture, indent=2) + "\n")
            written += 1
            print(target.relative_to(ROOT))
    print(f"{written} fixture(s) written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
