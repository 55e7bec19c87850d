"""The committed generated code in libs/contracts/src/ticketflow/v1 matches proto/ exactly."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "libs" / "contracts" / "src"
GENERATED_PACKAGE = Path("ticketflow") / "v1"
FIX = "run `uv run python scripts/gen_protos.py` and commit the result with the .proto change"

pytestmark = pytest.mark.compat


def _files(root: Path) -> dict[Path, str]:
    base = root / GENERATED_PACKAGE
    return {
        p.relative_to(root): p.read_text()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"gen_protos.py failed:\n{result.stdout}\n{result.stderr}"

    fresh, committed = _files(tmp_path), _files(COMMITTED)
    problems: list[str] = []
    for path in sorted(fresh.keys() - committed.keys()):
        problems.append(f"missing from the commit: {path}")
    for path in sorted(committed.keys() - fresh.keys()):
        problems.append(f"stale file (no .proto generates it): {path}")
    for path in sorted(fresh.keys() & committed.keys()):
        if fresh[path] != committed[path]:
            diff = difflib.unified_diff(
                committed[path].splitlines(keepends=True),
                fresh[path].splitlines(keepends=True),
                fromfile=f"committed/{path}",
                tofile=f"regenerated/{path}",
                n=1,
            )
            problems.append("".join(list(diff)[:40]))
    assert not problems, f"generated protobuf code is stale: {FIX}\n\n" + "\n".join(problems)


def test_generated_modules_import_by_proto_path() -> None:
    from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

    request = ticket_pb2.SubmitTicketRequest(customer_id="c-1", subject="s", body="b")
    assert not request.HasField("ticket_id")
    assert not request.HasField("requested_refund_cents")
    request.requested_refund_cents = 0
    assert request.HasField("requested_refund_cents"), "0 cents must differ from absent"
    assert ticket_pb2.DESCRIPTOR.package == "ticketflow.v1"
    assert hasattr(ticket_pb2_grpc, "TicketServiceStub")
    assert hasattr(ticket_pb2_grpc, "add_TicketServiceServicer_to_server")
