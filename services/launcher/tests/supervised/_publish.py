"""Pid files for the supervised test children: each appears complete or not at all (it is the
driver's readiness probe, and a child may be stopped at any point after it starts)."""

import os
from pathlib import Path


def publish(path: Path, pid: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(pid))
    os.replace(tmp, path)
