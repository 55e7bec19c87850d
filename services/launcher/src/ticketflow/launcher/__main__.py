"""`python -m ticketflow.launcher` and the `ticketflow` console script: see ``cli``."""

from typing import NoReturn

from ticketflow.runtime.lifecycle import exit_process

from . import cli

__all__ = ["main"]


def main() -> NoReturn:
    # exit_process, not sys.exit: the launcher holds a Temporal client, whose native threads may
    # call into Python while the interpreter finalises (see ticketflow.runtime.lifecycle).
    exit_process(cli.main())


if __name__ == "__main__":
    main()
