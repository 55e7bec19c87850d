"""Migrations on both backends: applied once, forward-only, all-or-nothing, serialised between
concurrent runners, and a start-up check that says which command to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from ticketflow.storage import (
    Backend,
    Migrations,
    SchemaMismatch,
    StoreUrl,
    current_revision,
    require_current,
    upgrade,
)
from ticketflow.testkit import eventually

HERE = Path(__file__).parent
TOY = Migrations(
    store="toy store",
    script_location=str(HERE / "toy_migrations"),
    version_table="toy_schema_version",
    command="toy migrate",
)
BROKEN = Migrations(
    store="broken store",
    script_location=str(HERE / "toy_broken"),
    version_table="broken_schema_version",
    command="broken migrate",
)


def _seeds(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())


def test_upgrade_applies_every_revision_once(engine: Engine) -> None:
    assert current_revision(engine, TOY) is None
    assert upgrade(engine, TOY) == (None, "0002")
    assert upgrade(engine, TOY) == ("0002", "0002")  # again: nothing to do
    assert current_revision(engine, TOY) == "0002"
    assert _seeds(engine) == 1


def test_a_store_behind_or_empty_is_refused_with_the_command_to_run(
    engine: Engine, store_url: StoreUrl
) -> None:
    with pytest.raises(SchemaMismatch, match=r"has no schema yet: run `toy migrate`"):
        require_current(engine, TOY, store_url.shown)
    with engine.begin() as conn:
        command.upgrade(TOY.config(conn), "0001")
    with pytest.raises(SchemaMismatch, match=r"at schema revision 0001, this release needs 0002"):
        require_current(engine, TOY, store_url.shown)
    upgrade(engine, TOY)
    require_current(engine, TOY, store_url.shown)


def test_a_store_migrated_by_a_newer_release_is_refused(
    engine: Engine, store_url: StoreUrl
) -> None:
    upgrade(engine, TOY)
    with engine.begin() as conn:
        conn.execute(text("UPDATE toy_schema_version SET version_num = '0099'"))
    for attempt in (lambda: upgrade(engine, TOY), lambda: require_current(engine, TOY, "x")):
        with pytest.raises(SchemaMismatch, match="0099, which this release does not know"):
            attempt()
    assert _seeds(engine) == 1


def test_a_failing_revision_leaves_nothing_behind(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="failed half-way"):
        upgrade(engine, BROKEN)
    assert current_revision(engine, BROKEN) is None
    with pytest.raises(DBAPIError, match="half_done"), engine.connect() as conn:
        conn.execute(text("SELECT * FROM half_done"))


RUNNER = """
import sys
from ticketflow.storage import Migrations, open_engine, parse_store_url, upgrade
from pathlib import Path
location, version_table, url = sys.argv[1:4]
engine = open_engine(parse_store_url(url, data_dir=Path(".")))
print("ready", flush=True)
before, after = upgrade(engine, Migrations("toy store", location, version_table, "toy migrate"))
print(f"{before}->{after}", flush=True)
"""


def _waiting_for_advisory_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
        )


@pytest.mark.timeout(180)  # four Python processes start (and import) while the suite runs
def test_concurrent_runners_apply_each_revision_once(engine: Engine, store_url: StoreUrl) -> None:
    """Replicas that all run `migrate` at start: each revision runs once, none fails.

    The test holds the migration lock itself while the runner processes start, so they are all
    waiting for it at once (on PostgreSQL it sees them queue in pg_locks); then it lets go.
    """
    runners = 4
    url = store_url.sqlalchemy_url.set(drivername=store_url.backend.value)
    argv = [sys.executable, "-c", RUNNER, TOY.script_location, TOY.version_table]
    argv.append(url.render_as_string(hide_password=False))
    with engine.begin() as holder:
        if store_url.backend == Backend.POSTGRESQL:
            holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TOY.lock_key})
        else:
            holder.execute(text("CREATE TABLE lock_holder (x INTEGER)"))  # takes the write lock
        procs = [
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(runners)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ready\n", proc.stderr and proc.stderr.read()
            if store_url.backend == Backend.POSTGRESQL:
                eventually(
                    lambda: _waiting_for_advisory_locks(engine) == runners,
                    what=f"{runners} runners waiting for the migration lock",
                )
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(out.strip())
    assert sorted(results) == ["0002->0002"] * (runners - 1) + ["None->0002"]
    assert _seeds(engine) == 1
