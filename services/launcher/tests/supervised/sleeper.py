"""Writes its pid and a grandchild's (same process group), then waits for a signal."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from _publish import publish

out = Path(sys.argv[1])
grandchild = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
publish(out / "sleeper-grandchild.pid", grandchild.pid)
publish(out / "sleeper.pid", os.getpid())
print("sleeper up", flush=True)
signal.pause()
