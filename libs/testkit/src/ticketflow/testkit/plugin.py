"""pytest plugin (registered through the ``pytest11`` entry point): the test kit's fixtures.

- ``dev_env`` (session): the dev server in memory, shared by a package's tests (each test uses its
  own task queue or ticket ids);
- ``time_env``: a fresh time-skipping server per test;
- ``worker_fleet``: a ``WorkerFleet`` factory whose workers are stopped after the test;
- ``service_process``: ``start(argv, env)`` runs a ``ServiceProcess`` (log under the test's
  tmp_path), killed after the test if it still runs;
- ``postgres_server`` (session): a real PostgreSQL server on 127.0.0.1, shared by a package's
  tests; ``postgres_url``: a fresh empty database on it per test (dropped afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from .fleet import WorkerFleet
from .postgres import PostgresServer
from .processes import ServiceProcess
from .servers import start_dev_env, start_time_skipping_env, stop_env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_env()
    try:
        yield env
    finally:
        await stop_env(env)


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_env()
    try:
        yield env
    finally:
        await stop_env(env)


@pytest.fixture
async def worker_fleet() -> AsyncIterator[Callable[[Client], Awaitable[WorkerFleet]]]:
    made: list[WorkerFleet] = []

    async def make(client: Client) -> WorkerFleet:
        fleet = WorkerFleet(client)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        await fleet.stop()


@pytest.fixture
def service_process(
    tmp_path: Path,
) -> Iterator[Callable[[Sequence[str], Mapping[str, str]], ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(argv: Sequence[str], env: Mapping[str, str]) -> ServiceProcess:
        name = Path(argv[0]).name
        process = ServiceProcess(argv, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    if postgres_server.pid is not None:  # a test may have stopped or killed it
        postgres_server.drop_database(url)


BACKENDS = ("sqlite", "postgresql")


def backend_database_url(request: pytest.FixtureRequest, sqlite_file: Path) -> str:
    """For a fixture parametrized over ``BACKENDS``: ``sqlite:///<sqlite_file>``, or a fresh
    database on the session's ``postgres_server`` (an unparametrized fixture gets SQLite)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{sqlite_file}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
