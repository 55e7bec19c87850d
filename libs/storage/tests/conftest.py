"""Every storage test runs on both backends: a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from ticketflow.storage import StoreUrl, open_engine, parse_store_url
from ticketflow.testkit import BACKENDS, backend_database_url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUrl:
    url = backend_database_url(request, tmp_path / "store.db")
    return parse_store_url(url, data_dir=tmp_path)


@pytest.fixture
def engine(store_url: StoreUrl) -> Iterator[Engine]:
    engine = open_engine(store_url)
    yield engine
    engine.dispose()
