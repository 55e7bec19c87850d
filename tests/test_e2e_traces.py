"""One trace per ticket, across every process: POST /tickets (or gRPC SubmitTicket), StartWorkflow,
the workflow, every activity on every worker, and the approval Update.

Real processes export their spans over OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT``) to an in-memory
receiver in the test (``otlp_sink``), which is where they are inspected.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

from .harness import Stack, bearer, eventually, submit, wait_status
from .otlp_sink import Span, otlp_sink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# The spans of one approved refund, by the process that makes them.
EXPECTED = {
    ("ticketflow-api", "POST /tickets"),
    ("ticketflow-api", "StartWorkflow:TicketWorkflow"),
    ("ticketflow-core-worker", "RunWorkflow:TicketWorkflow"),
    ("ticketflow-core-worker", "StartActivity:classify"),
    ("ticketflow-agent-worker", "RunActivity:classify"),
    ("ticketflow-core-worker", "StartActivity:draft_reply"),
    ("ticketflow-agent-worker", "RunActivity:draft_reply"),
    ("ticketflow-core-worker", "ValidateUpdate:decide"),
    ("ticketflow-core-worker", "HandleUpdate:decide"),
    ("ticketflow-core-worker", "StartActivity:issue_refund"),
    ("ticketflow-core-worker", "RunActivity:issue_refund"),
    ("ticketflow-core-worker", "StartActivity:send_reply"),
    ("ticketflow-core-worker", "RunActivity:send_reply"),
    ("ticketflow-core-worker", "StartActivity:record_outcome"),
    ("ticketflow-projection", "RunActivity:record_outcome"),
    ("ticketflow-core-worker", "CompleteWorkflow:TicketWorkflow"),
}


def _trace_of(spans: list[Span], workflow_id: str) -> list[Span]:
    start = [
        s
        for s in spans
        if s.name == "StartWorkflow:TicketWorkflow"
        and s.attributes.get("temporalWorkflowID") == workflow_id
    ]
    assert len(start) == 1, [s.name for s in spans]
    return [s for s in spans if s.trace_id == start[0].trace_id]


def tree(spans: list[Span]) -> str:
    """The spans as an indented tree (printed when the test fails, and for the report)."""
    children: dict[str, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_id, []).append(s)
    ids = {s.span_id for s in spans}
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        link = f"  (links to {span.links[0][:8]}…)" if span.links else ""
        lines.append(f"{'  ' * depth}{span.name}  [{span.service}]{link}")
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in [s for s in spans if s.parent_id not in ids]:
        walk(root, 0)
    return "\n".join(lines)


def test_one_trace_from_http_submit_through_every_activity_and_the_approval(
    stack_factory: Any,
) -> None:
    with otlp_sink() as sink:
        stack: Stack = stack_factory(
            OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_BSP_SCHEDULE_DELAY="100",  # ms: export soon, the test waits for the spans
        )
        stack.start_all()
        api = stack.start_api()
        created = submit(
            api, subject="Refund", body="refund my order", order_id="o-9",
            requested_refund_cents=25_000,
        )  # fmt: skip
        tid, wf_id = created["ticket_id"], created["workflow_id"]
        wait_status(api, tid, "WAITING_APPROVAL")
        decided = api.post(
            f"/tickets/{tid}/decision", json={"approved": True, "reason": "ok"},
            headers=bearer("alice"),
        )  # fmt: skip
        assert decided.status_code == 200, decided.text
        wait_status(api, tid, "RESOLVED")

        def complete() -> list[Span]:
            spans = _trace_of(sink.spans(), wf_id)
            missing = EXPECTED - {(s.service, s.name) for s in spans}
            assert not missing, f"missing {sorted(missing)}\n{tree(spans)}"
            return spans

        spans = eventually(complete, timeout=30, what="every span of the ticket's trace")
        print(f"trace {spans[0].trace_id}:\n{tree(spans)}")
        assert len({s.trace_id for s in spans}) == 1
        # One root: the HTTP request; everything else hangs below it.
        roots = [s for s in spans if s.parent_id not in {x.span_id for x in spans}]
        assert [(r.service, r.name) for r in roots] == [("ticketflow-api", "POST /tickets")]
        # The Update is the approver's request too: its spans link to the decision's own trace.
        everything = sink.spans()
        decision = [s for s in everything if s.name == "POST /tickets/{ticket_id}/decision"]
        assert len(decision) == 1
        handle = next(s for s in spans if s.name == "HandleUpdate:decide")
        assert handle.links == (decision[0].trace_id,)
        assert any(
            s.name == "StartWorkflowUpdate:decide" and s.trace_id == decision[0].trace_id
            for s in everything
        )

        # The same over gRPC: SubmitTicket is the root of the ticket's trace.
        with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            stub = ticket_pb2_grpc.TicketServiceStub(channel)
            resp = stub.SubmitTicket(
                ticket_pb2.SubmitTicketRequest(customer_id="c", subject="login", body="password"),
                timeout=30,
            )
        wait_status(api, resp.ticket_id, "RESOLVED")

        def grpc_trace() -> list[Span]:
            spans = _trace_of(sink.spans(), resp.workflow_id)
            names = {(s.service, s.name) for s in spans}
            assert ("ticketflow-projection", "RunActivity:record_outcome") in names, tree(spans)
            return spans

        spans = eventually(grpc_trace, timeout=30, what="the gRPC ticket's trace")
        roots = [s for s in spans if s.parent_id not in {x.span_id for x in spans}]
        assert [(r.service, r.name) for r in roots] == [
            ("ticketflow-api", "/ticketflow.v1.TicketService/SubmitTicket")
        ], tree(spans)
