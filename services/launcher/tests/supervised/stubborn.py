"""Ignores SIGTERM: only SIGKILL after the grace period stops it."""

import os
import signal
import sys
from pathlib import Path

from _publish import publish

signal.signal(signal.SIGTERM, signal.SIG_IGN)
publish(Path(sys.argv[1]) / "stubborn.pid", os.getpid())
print("stubborn up", flush=True)
while True:
    signal.pause()
