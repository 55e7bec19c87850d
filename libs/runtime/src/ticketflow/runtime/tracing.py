"""OpenTelemetry tracing: one trace from a ticket's submission through its workflow and every
activity, across processes.

``setup_tracing(service)`` installs an SDK ``TracerProvider`` for the process (resource
``service.name=ticketflow-<service>``; the standard ``OTEL_*`` variables refine it). Spans are
exported over OTLP (gRPC) only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; otherwise nothing is exported, but spans still get
ids, so log lines carry ``trace_id``/``span_id`` and the context still crosses processes.

Across processes: ``tracing_interceptors()`` (Temporal's ``TracingInterceptor``) goes on every
Temporal client; workers made from that client inherit it, so StartWorkflow, the workflow, its
activities and Updates are spans of the caller's trace (the context travels in Temporal headers).
gRPC servers and clients are instrumented with ``opentelemetry-instrumentation-grpc``; the api's
FastAPI app with ``opentelemetry-instrumentation-fastapi``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

__all__ = ["otlp_configured", "setup_tracing", "tracing_interceptors"]

_OTLP_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def otlp_configured() -> bool:
    return any(os.environ.get(var, "").strip() for var in _OTLP_VARS)


def setup_tracing(
    service: str, *, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider | None:
    """Install the process's tracer provider once (the global provider cannot be replaced); later
    calls return None. ``processors`` (tests: an in-memory exporter) come in addition to OTLP."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None  # before building an exporter whose thread would then be left running
    provider = TracerProvider(resource=Resource.create({"service.name": f"ticketflow-{service}"}))
    if otlp_configured():
        # Imported only when used: the exporter pulls in its gRPC stubs.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptors() -> list[Interceptor]:
    """The interceptors every Temporal client of a service carries (workers inherit them)."""
    return [TracingInterceptor()]
