"""`buf lint` (STANDARD) and `buf breaking` (FILE) over proto/, with buf from the PyPI package buf-bin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
BASELINE = PROTO / "breaking-baseline.json"

pytestmark = pytest.mark.compat


def _buf() -> str:
    candidate = Path(sys.executable).parent / "buf"
    found = str(candidate) if candidate.exists() else shutil.which("buf")
    if found is None:
        pytest.skip("buf not installed: `uv sync` installs it (buf-bin is in the root dev group)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_buf(), *args], cwd=PROTO, capture_output=True, text=True, check=False, timeout=120
    )


def test_buf_lint() -> None:
    result = _run("lint")
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}{result.stderr}"


def test_buf_breaking_against_baseline() -> None:
    result = _run("breaking", "--against", str(BASELINE))
    assert result.returncode == 0, (
        "proto/ breaks wire compatibility with proto/breaking-baseline.json. Add fields with new "
        "numbers; never delete a field or enum value (mark it [deprecated = true] and stop using "
        "it: buf's FILE rules refuse a deletion even when the number is reserved), never "
        "renumber, retype or rename. See docs/compatibility.md.\n"
        f"{result.stdout}{result.stderr}"
    )


def test_baseline_covers_every_proto_file() -> None:
    """A .proto file missing from the baseline would have no breaking check at all."""
    baseline = json.loads(BASELINE.read_text())
    covered = {f["name"] for f in baseline["file"] if not f.get("bufExtension", {}).get("isImport")}
    current = {str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto")}
    missing = sorted(current - covered)
    assert not missing, (
        f"{missing} not in proto/breaking-baseline.json: once `buf breaking` passes, refresh it "
        "with `uv run python scripts/gen_protos.py --update-baseline` and commit it"
    )


# Each edit is made to a scratch copy of proto/; `old` must occur exactly once in the file.
BREAKING_EDITS = {
    "removed field": (
        "  optional string order_id = 4;\n",
        "",
        ['field "4" with name "order_id" on message "NewTicket" was deleted'],
    ),
    "renamed field": (
        "  string subject = 2;\n",
        "  string title = 2;\n",
        ['Field "2" on message "NewTicket" changed name from "subject" to "title"'],
    ),
    "reused number": (
        "  string model = 2;\n",
        "  int64 tokens = 2;\n",
        ['Field "2" with name "tokens" on message "Draft" changed type from "string" to "int64"'],
    ),
    "changed type": (
        "  int64 amount_cents = 3;\n",
        "  int32 amount_cents = 3;\n",
        ['"amount_cents" on message "RefundReceipt" changed type from "int64" to "int32"'],
    ),
    "enum value removed": (
        "  CATEGORY_BILLING = 2;\n",
        "",
        ['enum value "2" on enum "Category" was deleted'],
    ),
}
ALLOWED_EDITS = {
    "new field with a new number": (
        "  string rationale = 7;\n",
        "  string rationale = 7;\n  string example_note = 9001;\n",
    ),
    "new enum value": (
        "  CATEGORY_OTHER = 5;\n",
        "  CATEGORY_OTHER = 5;\n  CATEGORY_EXAMPLE = 9001;\n",
    ),
}


def _edited_copy(tmp_path: Path, old: str, new: str) -> Path:
    if _run("breaking", "--against", str(BASELINE)).returncode != 0:
        pytest.skip("proto/ itself breaks the baseline: see test_buf_breaking_against_baseline")
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy)
    target = copy / "ticketflow" / "v1" / "ticket.proto"
    text = target.read_text()
    assert text.count(old) == 1, f"edit anchor {old!r} must occur once in ticket.proto"
    target.write_text(text.replace(old, new))
    return copy


def _breaking(copy: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_buf(), "breaking", "--against", str(BASELINE)],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("edit", sorted(BREAKING_EDITS))
def test_breaking_proto_edit_fails_buf_breaking(edit: str, tmp_path: Path) -> None:
    old, new, expected = BREAKING_EDITS[edit]
    result = _breaking(_edited_copy(tmp_path, old, new))
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{edit} passed `buf breaking`:\n{output}"
    for text in expected:
        assert text in output, f"{edit}: expected {text!r} in:\n{output}"


@pytest.mark.parametrize("edit", sorted(ALLOWED_EDITS))
def test_compatible_proto_edit_passes_buf_breaking(edit: str, tmp_path: Path) -> None:
    old, new = ALLOWED_EDITS[edit]
    result = _breaking(_edited_copy(tmp_path, old, new))
    assert result.returncode == 0, f"{edit} failed:\n{result.stdout}{result.stderr}"
