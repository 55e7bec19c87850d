"""The supervisor's output: every child's lines prefixed with its name, and its own lines.

Lines from several threads (one pump per child, the supervisor) go through one lock, so they never
interleave mid-line; a closed stdout is ignored rather than taking the supervisor down.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TextIO

from ._child import Child

__all__ = ["Output"]

_COLORS = ("36", "33", "35", "32", "34", "91", "96", "93")


class Output:
    """Writes prefixed lines to ``out``; ``color`` None colours the prefixes on a TTY."""

    def __init__(self, out: TextIO, *, name_width: int, color: bool | None, own_name: str) -> None:
        self.out = out
        self.name_width = name_width
        if color is None:
            color = hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
        self.color = color
        self._own_prefix = f"{own_name:<{name_width}} |"
        self._lock = threading.Lock()

    def prefix(self, name: str, index: int) -> str:
        label = f"{name:<{self.name_width}} |"
        if self.color:
            return f"\x1b[{_COLORS[index % len(_COLORS)]}m{label}\x1b[0m"
        return label

    def emit(self, prefix: str, line: str) -> None:
        with self._lock:
            try:
                self.out.write(f"{prefix} {line}\n" if prefix else f"{line}\n")
                self.out.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not take the supervisor down

    def log(self, message: str) -> None:
        """A line from the supervisor itself."""
        self.emit(self._own_prefix, message)

    def pump(self, child: Child, index: int, on_exit: Callable[[], None]) -> None:
        """Copy the child's output until it closes, then reap the child and call ``on_exit``.

        Runs in a thread of its own per child.
        """
        prefix = self.prefix(child.name, index)
        stream = child.process.stdout
        assert stream is not None
        with stream:
            for raw in iter(stream.readline, b""):
                if child.exit_expected and child.spec.quiet_when_stopping:
                    continue
                self.emit(prefix, raw.decode(errors="replace").rstrip("\r\n"))
        child.process.wait()
        on_exit()
