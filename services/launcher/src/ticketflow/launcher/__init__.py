"""ticketflow.launcher: `ticketflow up` runs the Temporal dev server and every service as one.

Modules: ``devserver`` (the dev server's command line and port helpers, reusable by tests),
``supervisor`` (child processes: start, stream, readiness, stop), ``statefile`` (the children of a
killed supervisor, stopped by the next start), ``_pdeathsig`` (the children's parent-death signal
wrapper, Linux), ``__main__`` (the CLI).
"""
