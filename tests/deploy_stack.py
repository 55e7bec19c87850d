"""ticketflow as separate containers, one image per service, with podman on the host network.

Used by the deploy check (test_deploy_images.py). Each service runs from its own image (none shares
a virtualenv with another or with the tests), bound to its own free port on 127.0.0.1 (host
network: nothing is published; TOOLING: no other network mode works on these machines), reached
through the `*_ADDRESS` variables, exactly as in deploy/compose.local.yml. Secrets go to podman
through its environment (`-e NAME` without a value), never on a command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ticketflow.runtime.devserver import dev_server_command
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


@dataclass
class ContainerStack:
    """Containers named `<prefix>-<role>`, all removed by ``close``."""

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
        return f"{self.prefix}-{role}"

    def _run(self, role: str, image: str, env: dict[str, str], args: list[str]) -> None:
        name = self.name(role)
        argv = [
            "run", "--detach", "--name", name, "--hostname", name,
            "--network", "host", "--ulimit", "host",
            # No systemd timer here: the check runs the image's HEALTHCHECK itself.
            "--health-interval", "disable",
        ]  # fmt: skip
        for key in env:
            argv += ["--env", key]  # the value comes from podman's own environment
        self.started.append(name)
        done = subprocess.run(
            self.engine.argv(*argv, image, *args),
            env={**self.engine.env(), **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"podman run {name} exited {done.returncode}: {done.stderr}")

    def service_env(self, **extra: str) -> dict[str, str]:
        return {
            "TICKETFLOW_TEMPORAL_ADDRESS": self.temporal_address,
            "TICKETFLOW_LOG_LEVEL": "INFO",
            **extra,
        }

    def start_temporal(self) -> None:
        argv = dev_server_command(
            db_filename="/data/temporal.db",
            ip="127.0.0.1",
            port=self.temporal_port,
            headless=True,
            binary="temporal",
        )
        assert argv[:3] == ["temporal", "server", "start-dev"]
        self._run(
            "temporal",
            images.image_name(images.TEMPORAL),
            {"TEMPORAL_ADDRESS": self.temporal_address},
            argv[3:],
        )

    def start_services(self) -> None:
        keys = {"TICKETFLOW_DECISION_KEYS": SECRETS["TICKETFLOW_DECISION_KEYS"]}
        self._run(
            "core-worker",
            images.image_name("core-worker"),
            self.service_env(TICKETFLOW_SIDE_EFFECT_START_TO_CLOSE_S="3", **keys),
            [],
        )
        for n in range(AGENT_REPLICAS):
            self._run(
                f"agent-worker-{n + 1}",
                images.image_name("agent-worker"),
                # One global rate on the primary queue, shared by the three replicas.
                self.service_env(TICKETFLOW_AGENT_RATE_PER_S="50", TICKETFLOW_MOCK_LATENCY_MS="20"),
                ["--queue", "both"],
            )
        self._run(
            "projection",
            images.image_name("projection"),
            self.service_env(
                TICKETFLOW_PROJECTION_HOST="127.0.0.1",
                TICKETFLOW_PROJECTION_PORT=str(self.projection_port),
                TICKETFLOW_READMODEL_TOKEN=SECRETS["TICKETFLOW_READMODEL_TOKEN"],
            ),
            [],
        )
        self._run(
            "api",
            images.image_name("api"),
            self.service_env(
                TICKETFLOW_HTTP_HOST="127.0.0.1",
                TICKETFLOW_HTTP_PORT=str(self.http_port),
                TICKETFLOW_GRPC_HOST="127.0.0.1",
                TICKETFLOW_GRPC_PORT=str(self.grpc_port),
                TICKETFLOW_PROJECTION_ADDRESS=f"127.0.0.1:{self.projection_port}",
                **SECRETS,
            ),
            [],
        )

    def roles(self) -> list[str]:
        return [n.removeprefix(f"{self.prefix}-") for n in self.started]

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
        for name in self.started:
            done = self.engine.run("logs", "--tail", "60", name, check=False, quiet=True)
            out.append(f"----- {name}\n{done.stdout}")
        return "\n".join(out)

    def close(self) -> None:
        for name in reversed(self.started):
            self.engine.run("rm", "--force", "--time", "5", name, check=False, quiet=True)
        self.started.clear()


def podman_available() -> bool:
    return subprocess.run(["which", "podman"], capture_output=True, check=False).returncode == 0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
