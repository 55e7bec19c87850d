"""Exits with code 3 right after writing its pid."""

import os
import sys
from pathlib import Path

from _publish import publish

publish(Path(sys.argv[1]) / "dier.pid", os.getpid())
print("dier: exiting with 3", flush=True)
sys.exit(3)
