"""Stop signals: SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT all mean "stop".

The first one is a stop request; one that arrives again later means "do not wait out the grace
period". Handlers only record and wake the main thread, which does the work.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

__all__ = ["DUPLICATE_SIGNAL_WINDOW_S", "STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

# A wrapper such as `uv run` forwards the SIGINT its child already got from the terminal's process
# group when it is not on a TTY: the same Ctrl-C arrives twice within milliseconds. Only a signal
# later than this counts as "asked again".
DUPLICATE_SIGNAL_WINDOW_S = 1.0


class StopSignals:
    """Records stop requests and sets ``wake`` on each; ``hurry`` once asked again."""

    def __init__(self, wake: threading.Event) -> None:
        self.received: int | None = None  # the first stop signal
        self.hurry = threading.Event()
        self.stopping = False  # set once the supervisor stops on its own (e.g. a child died)
        self._first_at = 0.0
        self._wake = wake
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self.handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        now = time.monotonic()
        if self.received is None and not self.stopping:
            self.received = signum
            self._first_at = now
        elif now - self._first_at >= DUPLICATE_SIGNAL_WINDOW_S:
            self.hurry.set()  # asked again: do not wait out the grace period
        self._wake.set()
