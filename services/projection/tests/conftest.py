"""Fixtures for the projection's own tests: a store on each backend (a temp SQLite file, a fresh
database on the suite's own PostgreSQL on 127.0.0.1), and the real read API on 127.0.0.1 (port 0)
over a real grpc.aio channel.

These tests use only the projection, the contracts and ticketflow.testkit. Those that need the real
TicketWorkflow (rebuild from real histories, the real workflow recording outcomes) are cross-service
and live in the root tests/ (tests/test_projection_*.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from ticketflow.projection.grpc_api import ReadApiServer
from ticketflow.projection.store import ReadModelStore
from ticketflow.storage import StoreUrl, parse_store_url
from ticketflow.testkit import BACKENDS, backend_database_url
from ticketflow.v1 import readmodel_pb2_grpc


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUrl:
    url = backend_database_url(request, tmp_path / "readmodel.db")
    return parse_store_url(url, data_dir=tmp_path)


@pytest.fixture
def store(store_url: StoreUrl) -> Iterator[ReadModelStore]:
    store = ReadModelStore(store_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> ReadModelStore:
    """For what only a file has (WAL mode, permissions, a file deleted under the store)."""
    return ReadModelStore(tmp_path / "readmodel.db")


class ReadApi:
    def __init__(self, server: ReadApiServer, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.channel = channel
        self.stub = readmodel_pb2_grpc.ReadModelServiceStub(channel)


@pytest.fixture
async def read_api(store: ReadModelStore) -> AsyncIterator[ReadApi]:
    server = ReadApiServer(store, "127.0.0.1:0")
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield ReadApi(server, channel)
    finally:
        await channel.close()
        await server.stop(0)
