"""Exec a command with a parent-death signal (Linux): it gets SIGTERM when its parent dies.

Run as ``python -I -S _pdeathsig.py PARENT_PID LC_CTYPE NICE ARGV...`` by the supervisor, as the
child it just forked (LC_CTYPE: ``=value`` as the command's environment has it, ``-`` if unset;
NICE: added to the process's niceness first, 0 for none). It sets
``prctl(PR_SET_PDEATHSIG, SIGTERM)``, then execs ARGV in the same process (same pid, same session;
the setting survives execve), so a SIGKILLed launcher's services and dev server still get a
SIGTERM and shut down instead of living on, re-parented to PID 1. If PARENT_PID is no longer its
parent (it died before the prctl), it exits without running ARGV.

Why a wrapper and not ``Popen(preexec_fn=...)``: preexec_fn runs Python in the forked child of a
multi-threaded process (output pump threads, the gRPC and Temporal client threads of the readiness
probes), which the subprocess docs warn may deadlock before exec. This script instead runs in a
fresh single-threaded interpreter; its cost is one short interpreter start per child.

It only uses the standard library, and runs in isolated mode without ``site``.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main() -> None:
    parent, lc_ctype, nice, *argv = sys.argv[1:]
    if int(nice):
        try:
            os.nice(int(nice))
        except OSError as why:  # lowering one's priority is always allowed; say so if it was not
            print(f"ticketflow: cannot change the niceness by {nice}: {why}", file=sys.stderr)
    # This interpreter's startup may have coerced a C locale by setting LC_CTYPE (PEP 538): give
    # the command the environment the supervisor asked for.
    if lc_ctype.startswith("="):
        os.environ["LC_CTYPE"] = lc_ctype[1:]
    else:
        os.environ.pop("LC_CTYPE", None)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4  # int prctl(int, unsigned long...)
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print(f"ticketflow: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(err)}", file=sys.stderr)
    elif os.getppid() != int(parent):
        # The parent died between fork and prctl, so no signal will come: do not start at all.
        sys.exit(128 + signal.SIGTERM)
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        print(f"ticketflow: cannot run {argv[0]}: {err}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
