"""Shuts down on SIGTERM like a service, leaving a file that says which signal it got."""

import os
import signal
import sys
from pathlib import Path
from types import FrameType

from _publish import publish

out = Path(sys.argv[1])


def on_term(signum: int, frame: FrameType | None) -> None:
    (out / "graceful.sigterm").write_text(signal.Signals(signum).name)
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
publish(out / "graceful.pid", os.getpid())
print("graceful up", flush=True)
while True:
    signal.pause()
