"""The deploy check: the four service images built, run as separate containers, and a batch of
tickets through them, with one container restarted mid-batch.

1. podman, runc and mmdebstrap present (installed with apt when root: scripts/sysdeps.py; else the
   test fails saying what to install; it never skips, so CI cannot pass without it);
2. `scripts/images.py`'s build of api, core-worker, agent-worker, projection and the Temporal dev
   server image, into a private podman store under the test's tmp dir (so cleaning up removes
   only what this test made); then the same build again, which must give the same image ids
   (every layer reused); both times reported;
3. a stack of containers, each service from its own image (none shares a virtualenv) on the host
   network, bound to free ports on 127.0.0.1, three agent-worker replicas sharing the primary
   queue's rate limit; ready when each image's own HEALTHCHECK passes;
4. tickets over HTTP and gRPC (auto-resolved refunds and questions, and one large refund approved
   over HTTP by an approver's token); the core worker's container SIGKILLed once refunds are being
   paid, then started again;
5. every ticket RESOLVED, with exactly one refund (the right amount) per refund ticket and one
   reply per ticket in the core worker's ledger, read inside its container.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

from .deploy_stack import TOKENS, ContainerStack, images, in_ci, sysdeps
from .harness import eventually, wait_status

# Builds five images (cold, then warm) and runs seven containers on a 2-core machine.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]

ALL = [*images.SERVICES, images.TEMPORAL]


_reporter: list = []


def say(line: str) -> None:
    """Progress and figures on the terminal even while pytest captures output."""
    if not _reporter:
        print(f"deploy check: {line}", flush=True)
        return
    reporter, capture = _reporter
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"deploy check: {line}")


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[images.Engine]:
    """podman with a store of its own: everything this check builds or runs lives there and goes
    with it; the base image's tarball is cached in .images/base (like an apt package)."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        _reporter[:] = [reporter, capture]

    try:
        sysdeps.ensure_apt(
            ["podman", "runc", "mmdebstrap"],
            "the deploy check (building and running the service images)",
        )
    except sysdeps.MissingSystemPackages as err:
        pytest.fail(f"{err}{' (CI=true)' if in_ci() else ''}", pytrace=False)
    root = tmp_path_factory.mktemp("podman")
    engine = images.Engine("podman", root=root)
    try:
        yield engine
    finally:
        # Containers first (the test's own finaliser), then the private store: its images,
        # layers and volumes, none of which any other user of podman on this machine can see.
        engine.run("rm", "--all", "--force", check=False, quiet=True)
        engine.run("system", "reset", "--force", check=False, quiet=True)


@pytest.fixture(scope="module")
def built(engine: images.Engine) -> dict[str, images.Built]:
    t0 = time.monotonic()
    cold = images.build(ALL, engine=engine, progress=say)
    cold_s = time.monotonic() - t0
    ids = {b.service: _image_id(engine, b.image) for b in cold}
    t1 = time.monotonic()
    warm = images.build(ALL, engine=engine, progress=say)
    warm_s = time.monotonic() - t1
    again = {b.service: _image_id(engine, b.image) for b in warm}
    say(f"cold build {cold_s:.0f} s (base image included), warm build {warm_s:.0f} s")
    for b in warm:
        say(f"  {b.image:<45} {b.size_bytes / 1e6:5.0f} MB")
    # Nothing changed: every layer comes from the cache, so the images are the same images.
    assert again == ids
    return {b.service: b for b in warm}


def _image_id(engine: images.Engine, image: str) -> str:
    return engine.run("image", "inspect", "--format", "{{.Id}}", image, capture=True).stdout


def test_each_image_holds_only_its_service(engine: images.Engine, built) -> None:
    for service in images.SERVICES:
        image = built[service].image
        code = (
            "import importlib.metadata as m;"
            "print(' '.join(sorted(d.metadata['Name'] for d in m.distributions()"
            " if d.metadata['Name'].startswith('ticketflow'))))"
        )
        done = engine.run(
            "run", "--rm", "--network", "none", "--ulimit", "host", "--entrypoint", "python",
            image, "-c", code, capture=True,
        )  # fmt: skip
        installed = set(done.stdout.split())
        assert f"ticketflow-{service}" in installed
        others = {f"ticketflow-{s}" for s in images.SERVICES if s != service} | {"ticketflow"}
        assert not installed & others, (service, installed)
        assert "ticketflow-testkit" not in installed
        user = engine.run(
            "image", "inspect", "--format", "{{.User}} {{.Labels}}", image, capture=True
        ).stdout
        assert user.startswith("10001:10001"), user
        assert f"org.opencontainers.image.version:{images.version_of(service)}" in user
        tools = engine.run(
            "run", "--rm", "--network", "none", "--ulimit", "host", "--entrypoint", "sh", image,
            "-c", "command -v pip pip3 uv gcc cc curl || true", capture=True,
        ).stdout  # fmt: skip
        assert tools.strip() == "", (service, tools)


@pytest.fixture
def stack(engine: images.Engine, built) -> Iterator[ContainerStack]:
    s = ContainerStack(engine, prefix=f"tfcheck{uuid.uuid4().hex[:6]}")
    try:
        yield s
    finally:
        print(s.logs())  # shown by pytest when the test failed
        s.close()


def test_tickets_through_separate_containers_with_a_restart(stack: ContainerStack) -> None:
    t0 = time.monotonic()
    stack.up()  # deploy/compose.local.yml, by podman-compose
    for role in stack.roles():
        eventually(lambda role=role: stack.healthy(role), what=f"{role} healthy (HEALTHCHECK)")
    say(f"{len(stack.roles())} containers healthy in {time.monotonic() - t0:.0f} s")

    api = httpx.Client(base_url=f"http://127.0.0.1:{stack.http_port}", timeout=30)
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
    stub = ticket_pb2_grpc.TicketServiceStub(channel)
    refunds: dict[str, int] = {}
    questions: list[str] = []

    def submit_batch(first: int, n_refunds: int, n_questions: int) -> None:
        for i in range(first, first + n_refunds):  # over HTTP, under the auto-approve limit
            r = api.post(
                "/tickets",
                json={
                    "customer_id": f"c-{i}",
                    "subject": "refund",
                    "body": "please refund my order",
                    "order_id": f"o-{i}",
                    "requested_refund_cents": 1000 + i,
                },
            )
            assert r.status_code == 202, r.text
            refunds[r.json()["ticket_id"]] = 1000 + i
        for i in range(first, first + n_questions):  # over gRPC
            resp = stub.SubmitTicket(
                ticket_pb2.SubmitTicketRequest(
                    customer_id=f"g-{i}", subject="Cannot login", body=f"password reset {i}"
                ),
                timeout=30,
            )
            assert resp.created
            questions.append(resp.ticket_id)

    submit_batch(0, 12, 6)
    big = api.post(
        "/tickets",
        json={
            "customer_id": "c-big",
            "subject": "Refund",
            "body": "please refund my order",
            "order_id": "o-big",
            "requested_refund_cents": 25000,
        },
    ).json()["ticket_id"]
    refunds[big] = 25000

    # Mid-batch: the core worker's container SIGKILLed once refunds are being paid, the rest of
    # the batch submitted while it is down, then the container started again.
    paid = lambda: stack.sql("core-worker", "ledger.db", "SELECT count(*) FROM refunds")[0][0]  # noqa: E731
    eventually(lambda: paid() >= 1, what="the first refunds paid")
    paid_before, asked_before = paid(), len(refunds)
    stack.kill("core-worker")
    submit_batch(100, 8, 4)
    say(
        f"core-worker container killed with {paid_before}/{asked_before} refunds paid; "
        f"{len(refunds) + len(questions)} tickets in all"
    )
    stack.start("core-worker")
    eventually(lambda: stack.healthy("core-worker"), what="core-worker healthy again")

    wait_status(api, big, "WAITING_APPROVAL", timeout=180)
    decided = api.post(
        f"/tickets/{big}/decision",
        headers={"Authorization": f"Bearer {TOKENS['alice']}"},
        json={"approved": True, "reason": "deploy check"},
    )
    assert decided.status_code == 200, decided.text
    for tid in [*refunds, *questions]:
        t = wait_status(api, tid, "RESOLVED", "REJECTED", "ESCALATED", timeout=240)
        assert t["status"] == "RESOLVED", t
    assert wait_status(api, big, "RESOLVED")["decision"]["approver"] == "alice"

    rows = stack.sql("core-worker", "ledger.db", "SELECT ticket_id, amount_cents FROM refunds")
    assert dict((tid, cents) for tid, cents in rows) == refunds  # one row each, right amount
    attempts = stack.sql(
        "core-worker", "ledger.db", "SELECT ticket_id, result FROM refund_attempts"
    )
    assert sorted(tid for tid, result in attempts if result == "applied") == sorted(refunds)
    replies = stack.sql(
        "core-worker", "ledger.db", "SELECT ticket_id, count(*) FROM replies GROUP BY ticket_id"
    )
    assert dict((tid, n) for tid, n in replies) == dict.fromkeys([*refunds, *questions], 1)
    api.close()
    channel.close()
    say(f"{len(refunds) + len(questions)} tickets right in {time.monotonic() - t0:.0f} s")


def test_dev_server_image_runs_the_tests_command_line() -> None:
    """The temporal-dev image's default command is ticketflow's dev-server command line."""
    from ticketflow.runtime.devserver import dev_server_command

    text = (Path(images.TEMPORAL_DOCKERFILE)).read_text()
    cmd = text[text.index("\nCMD [") + 5 :].replace("\\\n", " ")
    args = [a.strip().strip('"') for a in cmd.strip().strip("[]").split(",")]
    expected = dev_server_command(
        db_filename="/data/temporal.db", ip="0.0.0.0", port=7233, headless=True, binary="t"
    )[3:]
    assert args == expected
