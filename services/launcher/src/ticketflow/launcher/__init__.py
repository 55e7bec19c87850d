"""ticketflow.launcher: `ticketflow up` runs the Temporal dev server and every service as one.

Modules: ``cli`` (argparse, help, exit codes), ``config`` (settings and options -> the stack's
ports and data dir; port checks), ``data_dir`` (the lock, state and token files), ``up`` (starting
the stack, the banner), ``stack`` (what it runs: each child's command, environment and readiness
probe), ``supervisor`` (child processes: start, stream, readiness, stop), ``statefile`` (the
children of a killed supervisor, stopped by the next start), ``_pdeathsig`` (the children's
parent-death signal wrapper, Linux). The dev server's command line, address parsing, port probes,
search attributes and worker readiness come from ``ticketflow.runtime``.
"""
