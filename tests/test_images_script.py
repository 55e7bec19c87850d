"""scripts/images.py and scripts/sysdeps.py without podman: which pins an image installs, which
workspace members it gets, and what a machine without the system packages is told."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import images  # noqa: E402
import sysdeps  # noqa: E402


def test_pins_follow_the_image_platform_markers() -> None:
    req = (
        "grpcio==1.85.3 \\\n    --hash=sha256:aa\n"
        "psycopg-binary==3.3.9 ; implementation_name != 'pypy' \\\n    --hash=sha256:bb\n"
        "tzdata==2026.6 ; sys_platform == 'win32' \\\n    --hash=sha256:cc\n"
        "Typing_Extensions==4.16.0\n"
    )
    assert images._pins_for_image(req) == {
        "grpcio-1.85.3",
        "psycopg_binary-3.3.9",
        "typing_extensions-4.16.0",
    }
    assert images._wheel_key("psycopg_binary-3.3.9-cp311-cp311-manylinux2014_x86_64.whl") == (
        "psycopg_binary-3.3.9"
    )


def test_versions_come_from_the_packages_and_the_lock() -> None:
    assert images.image_name("api") == f"localhost/ticketflow-api:{images.version_of('api')}"
    assert images.version_of(images.TEMPORAL).count(".") == 2


def test_without_root_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysdeps, "missing_apt", lambda packages: list(packages))
    monkeypatch.setattr(sysdeps.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sysdeps.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(sysdeps.MissingSystemPackages) as info:
        sysdeps.ensure_apt(["podman", "runc"], "the deploy check")
    assert "sudo apt-get install -y podman runc" in str(info.value)
    assert "the deploy check" in str(info.value)


def test_nothing_to_do_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysdeps, "missing_apt", lambda packages: [])
    monkeypatch.setattr(sysdeps.subprocess, "run", None)  # would fail if apt were called
    sysdeps.ensure_apt(["podman"], "anything")


def _compose(path: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / path).read_text())


def test_local_compose_runs_the_dev_server_as_the_tests_do() -> None:
    from ticketflow.runtime.devserver import dev_server_command

    temporal = _compose("deploy/compose.local.yml")["services"]["temporal"]
    command = [str(a).replace("${TEMPORAL_PORT:-7233}", "7233") for a in temporal["command"]]
    expected = dev_server_command(
        db_filename="/data/temporal.db", ip="127.0.0.1", port=7233, headless=True, binary="t"
    )[3:]
    assert command == expected


@pytest.mark.parametrize("path", ["docker-compose.yml", "deploy/compose.local.yml"])
def test_compose_files_name_the_images_this_checkout_builds(path: str) -> None:
    used = {s["image"] for s in _compose(path)["services"].values()}
    ours = {i for i in used if i.startswith(images.IMAGE_PREFIX)}
    assert ours <= {images.image_name(s) for s in [*images.SERVICES, images.TEMPORAL]}
    assert {images.image_name(s) for s in images.SERVICES} <= ours
