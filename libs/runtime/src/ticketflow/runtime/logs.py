"""Logging set up in one place for every service: one format, the level from settings."""

from __future__ import annotations

import logging

__all__ = ["LOG_FORMAT", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Route every logger (the SDK's, uvicorn's, ours) to stderr in one format at ``level``.

    ``force``: a second call (a test, a library that configured logging first) replaces the
    handlers instead of adding another copy of every line.
    """
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
