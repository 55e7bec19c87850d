"""`python -m ticketflow.launcher` and the `ticketflow` console script: see ``cli``."""

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
