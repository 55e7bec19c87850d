"""Regenerate the Python code for every .proto under proto/ into the contracts library.

    uv run python scripts/gen_protos.py            # writes libs/contracts/src/ticketflow/v1/
    uv run python scripts/gen_protos.py --out DIR  # writes DIR/ticketflow/v1/ (used by the freshness test)
    uv run python scripts/gen_protos.py --update-baseline  # also refreshes proto/breaking-baseline.json

protoc runs from grpcio-tools (no system protoc, no download); typed stubs (.pyi) come from
mypy-protobuf. proto/ is the include root, so proto/ticketflow/v1/ticket.proto becomes the module
ticketflow.v1.ticket_pb2 and the generated imports need no rewriting. The generated code is committed
(see proto/README.md); tests/test_protos_fresh.py fails when it is stale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
DEFAULT_OUT = ROOT / "libs" / "contracts" / "src"
BASELINE = PROTO_DIR / "breaking-baseline.json"
INIT_HEADER = '"""Generated protobuf and gRPC code for proto package {package}. Do not edit."""\n'


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTO_DIR) for p in PROTO_DIR.rglob("*.proto"))


def _plugin(name: str) -> str:
    """A tool installed next to this interpreter (mypy-protobuf's plugins, buf-bin's buf)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: run `uv sync` (it comes with the root dev group)")
    return found


def generate(out: Path) -> list[Path]:
    """Generate into ``out`` (an import root); return the files written, relative to ``out``."""
    files = proto_files()
    if not files:
        sys.exit(f"no .proto files under {PROTO_DIR}")
    packages = sorted({f.parent for f in files})
    for pkg in packages:
        # Start from an empty package folder, so a deleted .proto leaves no stale module behind.
        target = out / pkg
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)

    wkt_include = resources.files("grpc_tools") / "_proto"
    args = [
        f"--proto_path={PROTO_DIR}",
        f"--proto_path={wkt_include}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(f) for f in files),
    ]
    # protoc runs in a subprocess: grpc_tools.protoc.main() in-process keeps state between calls.
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"protoc failed ({result.returncode}):\n{result.stderr}")

    for pkg in packages:
        init = out / pkg / "__init__.py"
        init.write_text(INIT_HEADER.format(package=".".join(pkg.parts)))
    return sorted(
        p.relative_to(out) for pkg in packages for p in (out / pkg).rglob("*") if p.is_file()
    )


def update_baseline() -> None:
    """Write the buf image that `buf breaking` compares proto/ against (tests/test_proto_buf.py).

    Pretty-printed and key-sorted so a review sees exactly which fields a change added.
    """
    buf = _plugin("buf")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.json"
        subprocess.run(
            [buf, "build", "--exclude-source-info", "-o", str(image)],
            cwd=PROTO_DIR,
            check=True,
        )
        data = json.loads(image.read_text())
    BASELINE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"import root to write into (default: {DEFAULT_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"also rewrite {BASELINE.relative_to(ROOT)}, the `buf breaking` baseline "
        "(only after checking that the change is compatible)",
    )
    args = parser.parse_args(argv)
    written = generate(args.out.resolve())
    for path in written:
        print(args.out / path)
    if args.update_baseline:
        update_baseline()
        print(BASELINE)


if __name__ == "__main__":
    main()
