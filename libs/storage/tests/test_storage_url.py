"""Store URLs: the two forms, relative SQLite paths under the data dir, masked passwords, and a
clear refusal of anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from ticketflow.storage import Backend, InvalidStoreUrl, parse_store_url


def test_a_relative_sqlite_path_lives_in_the_data_dir(tmp_path: Path) -> None:
    url = parse_store_url("sqlite:///ledger.db", data_dir=tmp_path)
    assert url.backend == Backend.SQLITE
    assert url.sqlite_path == tmp_path / "ledger.db"


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    url = parse_store_url(f"sqlite:///{tmp_path}/x/ledger.db", data_dir=Path("/elsewhere"))
    assert url.sqlite_path == tmp_path / "x" / "ledger.db"


def test_postgresql_uses_psycopg_and_never_shows_the_password(tmp_path: Path) -> None:
    url = parse_store_url("postgresql://tf:s3cret@db.internal:5432/ticketflow", data_dir=tmp_path)
    assert url.backend == Backend.POSTGRESQL
    assert url.sqlalchemy_url.drivername == "postgresql+psycopg"
    assert url.sqlalchemy_url.password == "s3cret"
    for shown in (url.shown, str(url), repr(url)):
        assert "s3cret" not in shown
        assert "db.internal:5432/ticketflow" in shown


def test_a_unix_socket_host_in_the_query_is_accepted(tmp_path: Path) -> None:
    url = parse_store_url("postgresql://tf@/ticketflow?host=/run/postgresql", data_dir=tmp_path)
    assert url.backend == Backend.POSTGRESQL


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mysql://u:p@h/db", "unsupported store 'mysql'"),
        ("ledger.db", "not a store URL"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("postgresql://tf:pw@/", "needs a host and a database"),
        ("postgresql://tf:pw@host", "needs a host and a database"),
    ],
)
def test_anything_else_is_refused_with_what_to_write(value: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreUrl, match=says) as raised:
        parse_store_url(value, data_dir=tmp_path)
    assert "pw" not in str(raised.value)
