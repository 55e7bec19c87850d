"""What every ticketflow gRPC server and client carries: OpenTelemetry spans
(``opentelemetry-instrumentation-grpc``) and, on servers, the request duration metric
``ticketflow_grpc_request_duration_seconds{method,code}``."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)

from . import metrics
from .telemetry import temporal_runtime

__all__ = ["client_interceptors", "server_interceptors"]


class _DurationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Times unary-unary calls (every ticketflow RPC; health's Watch stream is not a request)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            failed = False
            try:
                answer = inner(request, context)
                return await answer if inspect.isawaitable(answer) else answer
            except BaseException:
                failed = True
                raise
            finally:
                code = context.code()
                if code is None:
                    code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
                name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                metrics.observe_duration(
                    temporal_runtime().metric_meter,
                    metrics.GRPC_REQUEST_DURATION,
                    timedelta(seconds=time.perf_counter() - started),
                    method=method,
                    code=name,
                )

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """Spans first (the duration covers the span's work), then the duration metric.

    Health and reflection get no spans: they are probes, not requests, and the instrumentation
    wraps their streaming methods wrongly (health's Watch then fails with "'async for' requires an
    object with __aiter__ method, got coroutine")."""
    probes = filters.any_of(
        filters.health_check(),
        filters.service_prefix("grpc.reflection."),
    )
    spans = aio_server_interceptor(filter_=filters.negate(probes))  # type: ignore[no-untyped-call]
    return [spans, _DurationInterceptor()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Spans of outgoing calls, with the trace context in the call's metadata."""
    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]
