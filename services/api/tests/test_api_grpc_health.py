"""gRPC health checking (following Temporal's reachability) and server reflection."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from ticketflow.api import Settings
from ticketflow.api.grpc_server import TICKET_SERVICE
from ticketflow.testkit import start_dev_env, stop_env

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def status_of(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_grpc_health_follows_temporal(helpers) -> None:
    env = await start_dev_env()  # its own server: the test stops it
    settings = Settings(
        temporal_address=env.client.service_client.config.target_host, health_timeout_s=0.5
    )
    try:
        async with helpers.serve_both(settings) as both:
            assert await status_of(both.channel, "") == SERVING
            assert await status_of(both.channel, TICKET_SERVICE) == SERVING
            await env.shutdown()
            assert await both.server.refresh_health() is False
            assert await status_of(both.channel, TICKET_SERVICE) == NOT_SERVING
            # The process itself still serves (liveness), like /healthz.
            assert await status_of(both.channel, "") == SERVING
    finally:
        await stop_env(env)


async def test_grpc_health_turns_not_serving_when_shutdown_begins(settings, helpers) -> None:
    async with helpers.serve_both(settings) as both:
        watch = health_pb2_grpc.HealthStub(both.channel).Watch(
            health_pb2.HealthCheckRequest(service=TICKET_SERVICE)
        )
        assert (await watch.read()).status == SERVING
        stopping = asyncio.create_task(both.server.stop(30))
        assert (await watch.read()).status == NOT_SERVING
        watch.cancel()  # the last in-flight call: the graceful stop completes without waiting
        await stopping


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_grpc_reflection_lists_and_describes_the_services(settings, helpers, version) -> None:
    """Reflection answers under both names (grpcurl and Postman ask v1 first); v1's messages are
    v1alpha's under another package, so the v1alpha classes encode both."""
    async with helpers.serve_both(settings) as both:
        info = both.channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

        async def ask(**request: Any) -> reflection_pb2.ServerReflectionResponse:
            call = info()
            await call.write(reflection_pb2.ServerReflectionRequest(**request))
            await call.done_writing()
            answer = await call.read()
            call.cancel()
            assert not answer.HasField("error_response"), answer
            return answer

        listed = await ask(list_services="")
        names = {s.name for s in listed.list_services_response.service}
        assert {
            "ticketflow.v1.TicketService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= names

        described = await ask(file_containing_symbol="ticketflow.v1.TicketService")
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in described.file_descriptor_response.file_descriptor_proto
        ]
        ticket_file = next(f for f in files if f.name == "ticketflow/v1/ticket.proto")
        service = next(s for s in ticket_file.service if s.name == "TicketService")
        assert {m.name for m in service.method} == {
            "SubmitTicket",
            "GetTicket",
            "ListTickets",
            "DecideTicket",
        }

        # Reflection describes itself under its v1 name too (its file renamed, types included).
        itself = await ask(file_containing_symbol="grpc.reflection.v1.ServerReflection")
        v1 = descriptor_pb2.FileDescriptorProto.FromString(
            itself.file_descriptor_response.file_descriptor_proto[0]
        )
        assert v1.package == "grpc.reflection.v1"
        method = v1.service[0].method[0]
        assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
