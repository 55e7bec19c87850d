"""Run a service until SIGTERM/SIGINT, then let it stop gracefully; one set of exit codes.

``run_service(prog, body)`` runs ``body(stop)`` on a fresh event loop. The first SIGTERM or SIGINT
sets ``stop`` (the body drains in-flight work and returns); a second one cancels the body, for an
operator who will not wait. Exit codes: 0 after a clean stop, ``EXIT_FAILED`` when the body raised
(``ServiceError`` prints its message alone, anything else its traceback), 130 when cancelled.

Every service process ends through ``exit_process``: it flushes the logs and the standard streams,
then leaves without interpreter finalisation. The Temporal SDK's core runs native threads that call
into Python (to forward its log lines, to complete the futures of calls in flight); one that does so
while CPython finalises aborts the process ("Fatal Python error: PyGILState_Release ...", SIGABRT),
and the exit code an operator or supervisor relies on is lost. Once a service has drained there is
nothing left to finalise but those buffers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "ServiceError",
    "exit_process",
    "install_stop_handlers",
    "run_service",
]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

log = logging.getLogger("ticketflow.runtime")


class ServiceError(RuntimeError):
    """A fatal condition the operator can fix; the message says what to do next."""


def install_stop_handlers(
    stop: asyncio.Event, prog: str, *, on_second: Callable[[], None] | None = None
) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop``; a second signal calls ``on_second``. Returns the uninstaller."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            print(f"{prog}: {sig.name} again, not waiting any longer", file=sys.stderr, flush=True)
            if on_second is not None:
                on_second()
            return
        print(f"{prog}: {sig.name}, shutting down gracefully", file=sys.stderr, flush=True)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)

    def uninstall() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return uninstall


def exit_process(code: int) -> NoReturn:
    """End the process with ``code`` now: flush the logs and standard streams, skip finalisation.

    Only for the end of a service's ``main`` (see the module's docstring for why); in-process
    callers such as tests must not reach it.
    """
    _flush_traces()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing more can be said
            pass
    os._exit(code)


def _flush_traces() -> None:
    """Export the spans still queued (bounded: a collector that is down must not hold the exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        try:
            provider.force_flush(timeout_millis=3000)
        except Exception:  # nothing to report to: the process is ending
            pass


def run_service(prog: str, body: Callable[[asyncio.Event], Awaitable[None]]) -> NoReturn:
    """Run ``body(stop)`` until it returns; end the process with the code described above."""

    async def guarded() -> None:
        stop = asyncio.Event()
        task = asyncio.current_task()

        def cancel() -> None:
            if task is not None:
                task.cancel()

        uninstall = install_stop_handlers(stop, prog, on_second=cancel)
        try:
            await body(stop)
        finally:
            uninstall()

    code = 0
    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = EXIT_INTERRUPTED
    except ServiceError as err:
        print(f"{prog}: {err}", file=sys.stderr, flush=True)
        code = EXIT_FAILED
    except Exception:
        log.exception("%s: fatal error", prog)
        code = EXIT_FAILED
    exit_process(code)
