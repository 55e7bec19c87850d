"""``ticketflow-core-worker migrate`` and the schema policy at start: SQLite migrates by itself
(``./dev up`` needs no extra step); PostgreSQL refuses to start on a store that is behind unless
``TICKETFLOW_MIGRATE_ON_START=true``; failures say what to do, never a password."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from ticketflow.core_worker.__main__ import main
from ticketflow.core_worker.settings import Settings
from ticketflow.testkit import ServiceProcess, console_script, free_port

BINARY = console_script("ticketflow-core-worker")
SECRET = "s3cret-pw"

Run = Callable[[Mapping[str, str]], ServiceProcess]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path))


def with_password(url: str) -> str:
    """The test server trusts loopback; a password in the URL is there to be masked."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def migrate(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["migrate"])
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    return int(exited.value.code or 0), out.out + out.err


def test_migrate_the_default_sqlite_ledger(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shown = f"sqlite:///{tmp_path}/ledger.db"
    assert migrate(capsys) == (0, f"ticketflow-core-worker: migrated the ledger at {shown} "
                                  "from no schema to 0001\n")  # fmt: skip
    assert migrate(capsys) == (0, f"ticketflow-core-worker: the ledger at {shown} is already "
                                  "at schema revision 0001\n")  # fmt: skip


def test_migrate_a_postgresql_ledger_shows_the_url_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("TICKETFLOW_LEDGER_URL", with_password(postgres_url))
    code, out = migrate(capsys)
    assert code == 0 and "migrated the ledger at postgresql://postgres:***@127.0.0.1" in out
    assert "from no schema to 0001" in out
    assert migrate(capsys)[1].endswith("is already at schema revision 0001\n")


def test_migrate_an_unreachable_server_exits_1_saying_what_to_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("TICKETFLOW_LEDGER_URL", f"postgresql://app:{SECRET}@127.0.0.1:{port}/tf")
    code, out = migrate(capsys)
    assert code == 1
    assert f"cannot use the ledger at postgresql://app:***@127.0.0.1:{port}/tf" in out
    assert "check that the database server runs" in out and "TICKETFLOW_LEDGER_URL" in out


def test_a_bad_ledger_url_is_a_bad_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_LEDGER_URL", f"mysql://app:{SECRET}@db/tf")
    code, out = migrate(capsys)
    assert code == 2 and "TICKETFLOW_LEDGER_URL: unsupported store 'mysql'" in out


@pytest.fixture
def run(
    service_process: Callable[[Sequence[str], Mapping[str, str]], ServiceProcess], tmp_path: Path
) -> Run:
    """The worker process against a Temporal address where nothing listens: it gets as far as
    waiting for Temporal only if the ledger store is ready."""

    def start(env: Mapping[str, str]) -> ServiceProcess:
        base = {
            "TICKETFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "TICKETFLOW_DATA_DIR": str(tmp_path),
        }
        return service_process([BINARY], {**base, **env})

    return start


def test_an_unmigrated_postgresql_ledger_stops_the_worker_with_what_to_run(
    run: Run, postgres_url: str
) -> None:
    worker = run({"TICKETFLOW_LEDGER_URL": with_password(postgres_url)})
    assert worker.wait() == 1, worker.output()
    assert "has no schema yet: run `ticketflow-core-worker migrate` first" in worker.output()
    assert "TICKETFLOW_MIGRATE_ON_START=true" in worker.output()
    assert SECRET not in worker.output()


def test_migrate_on_start_migrates_postgresql_then_waits_for_temporal(
    run: Run, postgres_url: str
) -> None:
    worker = run(
        {
            "TICKETFLOW_LEDGER_URL": with_password(postgres_url),
            "TICKETFLOW_MIGRATE_ON_START": "true",
        }
    )
    worker.wait_for_output("waiting for Temporal")
    assert "migrated the ledger at postgresql://postgres:***@" in worker.output()
    assert SECRET not in worker.output()
    worker.signal()
    assert worker.wait() == 0, worker.output()


def test_sqlite_migrates_at_start_unless_told_not_to(run: Run, tmp_path: Path) -> None:
    refused = run({"TICKETFLOW_MIGRATE_ON_START": "false"})
    assert refused.wait() == 1, refused.output()
    assert "run `ticketflow-core-worker migrate`" in refused.output()
    worker = run({})
    worker.wait_for_output("waiting for Temporal")
    assert f"migrated the ledger at sqlite:///{tmp_path}/ledger.db" in worker.output()
    worker.signal()
    assert worker.wait() == 0, worker.output()


@pytest.mark.parametrize(
    ("url", "flag", "migrates"),
    [
        ("", None, True),
        ("sqlite:///other.db", "false", False),
        ("postgresql://u@127.0.0.1:5432/tf", None, False),
        ("postgresql://u@127.0.0.1:5432/tf", "true", True),
    ],
)
def test_the_default_store_and_who_migrates_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, flag: str | None, migrates: bool
) -> None:
    monkeypatch.setenv("TICKETFLOW_LEDGER_URL", url)
    if flag is not None:
        monkeypatch.setenv("TICKETFLOW_MIGRATE_ON_START", flag)
    settings = Settings()
    assert settings.ledger_migrates_on_start is migrates
    if not url:  # the file the ledger has always lived in
        assert settings.ledger_store_url.sqlite_path == tmp_path / "ledger.db"
