"""Store URLs: where one of ticketflow's stores lives, as one setting.

``sqlite:///<path>`` (the embedded default: a file under the data dir; a relative path is taken
relative to the data dir) or ``postgresql://user:password@host:port/database`` (a server; any
libpq parameter may follow as a query, e.g. ``?sslmode=verify-full``). Anything else is refused
with a message that shows both forms. The password never leaves this module in clear: ``shown``
is what logs, banners and errors print.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["Backend", "InvalidStoreUrl", "StoreUrl", "parse_store_url", "sqlite_url"]

_FORMS = "sqlite:///<file> or postgresql://<user>:<password>@<host>:<port>/<database>"


class InvalidStoreUrl(ValueError):
    """A store URL that is neither SQLite nor PostgreSQL, or that lacks what it needs."""


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL. ``sqlalchemy_url`` names the driver (psycopg 3 for PostgreSQL)."""

    backend: Backend
    sqlalchemy_url: URL

    @property
    def sqlite_path(self) -> Path:
        if self.backend != Backend.SQLITE or not self.sqlalchemy_url.database:
            raise ValueError(f"{self.shown} is not a SQLite file")
        return Path(self.sqlalchemy_url.database)

    @property
    def shown(self) -> str:
        """The URL with its password masked: safe for logs and error messages."""
        url = self.sqlalchemy_url.set(drivername=self.backend.value)
        return url.render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"StoreUrl({self.shown!r})"


def sqlite_url(path: Path) -> StoreUrl:
    return StoreUrl(Backend.SQLITE, URL.create("sqlite", database=str(path)))


def parse_store_url(value: str, *, data_dir: Path) -> StoreUrl:
    """Parse ``value``; a relative SQLite path is resolved under ``data_dir``."""
    text = value.strip()
    try:
        url = make_url(text)
    except ArgumentError:
        raise InvalidStoreUrl(f"not a store URL; use {_FORMS}") from None
    scheme = url.drivername.split("+", 1)[0]
    if scheme == "sqlite":
        if url.host or url.username or url.password or url.port:
            raise InvalidStoreUrl("a sqlite URL names a file only: sqlite:///<file>")
        if not url.database or url.database == ":memory:":
            raise InvalidStoreUrl("a sqlite URL needs a file (a store must outlive the process)")
        path = Path(url.database).expanduser()
        return sqlite_url(path if path.is_absolute() else data_dir / path)
    if scheme in ("postgresql", "postgres"):
        if not (url.host or url.query.get("host")) or not url.database:
            raise InvalidStoreUrl(
                f"a postgresql URL needs a host and a database: {_FORMS.split(' or ')[1]}"
            )
        return StoreUrl(Backend.POSTGRESQL, url.set(drivername="postgresql+psycopg"))
    raise InvalidStoreUrl(f"unsupported store {scheme!r}; use {_FORMS}")
