"""A Supervisor in its own process and main thread, as `ticketflow up` runs it, so that tests send
real signals to a real process.

``driver.py OUT CHILDREN READY_TIMEOUT [never-ready]``: runs the children (comma-separated names
of the scripts next to this file) with their pid files in OUT, its state file at OUT/state.json.
"""

import sys
from pathlib import Path

from ticketflow.launcher.supervisor import ChildSpec, Supervisor

HERE = Path(__file__).parent
out = Path(sys.argv[1])
children = sys.argv[2].split(",")
ready_timeout = float(sys.argv[3])
never_ready = sys.argv[4:] == ["never-ready"]


def spec(name: str) -> ChildSpec:
    pid_file = out / f"{name}.pid"
    return ChildSpec(
        name,
        [sys.executable, str(HERE / f"{name}.py"), str(out)],
        ready=(lambda: False) if never_ready else pid_file.exists,
        ready_what=f"{pid_file.name} written",
    )


sup = Supervisor(grace_period=1.0, name_width=10, state_file=out / "state.json")
sup.stop_stale_children()  # as `ticketflow up` does before it starts anything
code = sup.run(
    [[spec(n) for n in children], lambda: sup.log("ALL READY")], ready_timeout=ready_timeout
)
sup.log(f"exit codes {sup.exit_codes}")
sys.exit(code)
