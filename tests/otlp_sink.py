"""An OTLP trace receiver for tests: the spans every process exports, kept in memory.

Services export over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (ticketflow.runtime
.tracing); pointing it here collects the spans of real processes for a test to inspect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from ticketflow.testkit import free_port

__all__ = ["OtlpSink", "Span", "otlp_sink"]


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    links: tuple[str, ...]  # trace ids this span links to
    attributes: dict[str, str]


class OtlpSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self.endpoint = ""

    def Export(self, request, context):
        got = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    got.append(
                        Span(
                            name=s.name,
                            service=service,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            links=tuple(link.trace_id.hex() for link in s.links),
                            attributes={a.key: str(a.value.string_value) for a in s.attributes},
                        )
                    )
        with self._lock:
            self._spans.extend(got)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)


@contextmanager
def otlp_sink() -> Iterator[OtlpSink]:
    """A receiver on 127.0.0.1 (``sink.endpoint`` for OTEL_EXPORTER_OTLP_ENDPOINT), stopped after."""
    sink = OtlpSink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    sink.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield sink
    finally:
        server.stop(grace=None)
