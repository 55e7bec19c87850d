from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .harness import Stack


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call":
        item.stash.setdefault(_failed_key, False)
        if rep.failed:
            item.stash[_failed_key] = True
    return rep


_failed_key = pytest.StashKey[bool]()


@pytest.fixture
def stack_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        s = Stack(tmp_path / f"stack{len(made)}", **env)
        made.append(s)
        return s

    yield make
    failed = request.node.stash.get(_failed_key, False)
    for s in made:
        if failed:
            print(s.all_logs())
        s.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """One whole stack (dev server and every worker) shared by a module's tests; its logs are
    printed when starting it fails."""
    s = Stack(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    try:
        s.start_all()
        yield s
    except BaseException:
        print(s.all_logs())
        raise
    finally:
        s.close()


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    """An api process on the module's stack, ready (/readyz 200)."""
    client = stack.start_api()
    yield client
    client.close()
