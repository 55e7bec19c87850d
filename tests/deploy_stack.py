"""ticketflow as separate containers, one image per service, with podman on the host network.

Used by the deploy check (test_deploy_images.py): deploy/compose.local.yml itself, brought up by
podman-compose (a dev dependency; Debian's 1.0.3 cannot run host-network services) against the
check's own podman store. Each service runs from its own image (none shares a virtualenv with
another or with the tests), bound to its own free port on 127.0.0.1 (host network: nothing is
published; no other network mode works on these machines), reached through the `*_ADDRESS`
variables. Secrets go to compose through its environment, never on a command line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ticketflow.testkit import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import images  # noqa: E402  (scripts/images.py, the same build a developer runs)
import sysdeps  # noqa: E402  (scripts/sysdeps.py: apt when root)

__all__ = ["AGENT_REPLICAS", "SECRETS", "TOKENS", "ContainerStack", "images", "in_ci", "sysdeps"]

TOKENS = {"alice": "tok-alice-0123456789"}
# Test values, never used outside this check.
SECRETS = {
    "TICKETFLOW_APPROVER_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
    "TICKETFLOW_DECISION_KEYS": "deploy:ZGVwbG95LWNoZWNrLWRlY2lzaW9uLWtleS0wMTIzNDU2Nzg5",
    "TICKETFLOW_READMODEL_TOKEN": "deploy-check-readmodel-token-0123456789",
}
AGENT_REPLICAS = 3


COMPOSE_FILE = ROOT / "deploy" / "compose.local.yml"


@dataclass
class ContainerStack:
    """deploy/compose.local.yml brought up by podman-compose as project ``prefix``: containers
    named `<prefix>_<service>_<n>`, all removed (with their volumes) by ``close``."""

    engine: images.Engine
    prefix: str
    temporal_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    projection_port: int = field(default_factory=free_port)
    started: list[str] = field(default_factory=list)

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    def name(self, role: str) -> str:
        service, _, n = role.rpartition("-") if role[-1].isdigit() else (role, "", "1")
        return f"{self.prefix}_{service}_{n}"

    def compose(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """podman-compose (a dev dependency) on compose.local.yml, with this engine's podman."""
        # podman-compose puts --podman-args after the subcommand: podman's global flags (this
        # check's own store) go through a wrapper given as the podman to run.
        assert self.engine.root is not None
        wrapper = self.engine.root / "podman"
        if not wrapper.exists():
            wrapper.write_text(
                "#!/bin/sh\nexec " + " ".join(map(shlex.quote, self.engine.argv())) + ' "$@"\n'
            )
            wrapper.chmod(0o755)
        argv = [
            str(Path(sys.executable).parent / "podman-compose"),
            "--podman-path", str(wrapper),
            "--project-name", self.prefix, "--file", str(COMPOSE_FILE), *args,
        ]  # fmt: skip
        variables = {
            "TEMPORAL_PORT": str(self.temporal_port),
            "TICKETFLOW_HTTP_PORT": str(self.http_port),
            "TICKETFLOW_GRPC_PORT": str(self.grpc_port),
            "TICKETFLOW_PROJECTION_PORT": str(self.projection_port),
            "TICKETFLOW_AGENT_RATE_PER_S": "50",
            **SECRETS,
            **env,
        }
        done = subprocess.run(
            argv,
            env={**self.engine.env(), **variables},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"podman-compose {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def up(self) -> None:
        self.started = ["temporal", "core-worker", "projection", "api"] + [
            f"agent-worker-{n + 1}" for n in range(AGENT_REPLICAS)
        ]
        self.compose("up", "--detach")

    def roles(self) -> list[str]:
        return list(self.started)

    def healthy(self, role: str) -> bool:
        """The image's own HEALTHCHECK, run now."""
        done = self.engine.run(
            "healthcheck", "run", self.name(role), check=False, quiet=True, capture=True
        )
        return done.returncode == 0

    def running(self, role: str) -> bool:
        done = self.engine.run(
            "inspect", "--format", "{{.State.Running}}", self.name(role), check=False, capture=True
        )
        return done.stdout.strip() == "true"

    def kill(self, role: str) -> None:
        self.engine.run("kill", "--signal", "KILL", self.name(role), quiet=True)
        self.engine.run("wait", self.name(role), quiet=True, check=False)

    def start(self, role: str) -> None:
        self.engine.run("start", self.name(role), quiet=True)

    def sql(self, role: str, db: str, query: str) -> list[list[object]]:
        """A read-only query on a SQLite file in the container's /data, run by its own python."""
        code = (
            "import json,sqlite3,sys;"
            f"c=sqlite3.connect('file:/data/{db}?mode=ro',uri=True,timeout=30);"
            "print(json.dumps(c.execute(sys.argv[1]).fetchall()))"
        )
        done = self.engine.run("exec", self.name(role), "python", "-c", code, query, capture=True)
        return json.loads(done.stdout)

    def logs(self) -> str:
        out = []
        for role in self.started:
            done = self.engine.run("logs", "--tail", "60", self.name(role), check=False, quiet=True)
            out.append(f"----- {role}\n{done.stdout}")
        return "\n".join(out)

    def close(self) -> None:
        if self.started:
            try:
                self.compose("down", "--volumes", "--timeout", "5")
            finally:
                self.started.clear()


def podman_available() -> bool:
    return subprocess.run(["which", "podman"], capture_output=True, check=False).returncode == 0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
