"""Every storage test runs on both backends: a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from ticketflow.storage import StoreUrl, open_engine, parse_store_url
from ticketflow.testkit import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUrl:
    if request.param == "sqlite":
        return parse_store_url("sqlite:///store.db", data_dir=tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return parse_store_url(server.create_database(), data_dir=tmp_path)


@pytest.fixture
def engine(store_url: StoreUrl) -> Iterator[Engine]:
    engine = open_engine(store_url)
    yield engine
    engine.dispose()
