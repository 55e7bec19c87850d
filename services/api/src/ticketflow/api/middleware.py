"""Refuse request bodies over a limit with 413, before anything parses them.

A declared `Content-Length` over the limit is refused before the app sees anything; a chunked body
(or one that lies about its length) is counted as it streams and refused once it passes the limit.
Bodies within the limit are buffered (they are small by construction) and replayed to the app.

Before answering 413 the rest of a moderately oversized body is read and thrown away: a server that
closes a connection with unread bytes in it makes the client's kernel see a reset, and the client
never reads the 413 (nginx calls this a lingering close). Past `DRAIN_LIMIT` it answers and closes.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

__all__ = ["DRAIN_LIMIT", "BodyLimitMiddleware"]

DRAIN_LIMIT = 1024 * 1024


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            # ASCII digits only: '²'.isdigit() is True and int('²') raises (a 500, not a 400).
            if not (declared.isascii() and declared.isdigit()):
                await self._refuse(
                    scope, receive, send, 400, "bad_request", "invalid Content-Length"
                )
                return
            if int(declared) > self.max_body_bytes:
                if int(declared) <= DRAIN_LIMIT:
                    await _drain(receive, 0)
                await self._too_large(scope, receive, send)
                return

        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                if message.get("more_body", False):
                    await _drain(receive, total)
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect is left to wait for

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._refuse(
            scope,
            receive,
            send,
            413,
            "payload_too_large",
            f"request body larger than {self.max_body_bytes} bytes",
        )

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        # Close the connection: the unread rest of the body must not be taken for the next request.
        response = JSONResponse(
            error_body(code, message), status_code=status, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


async def _drain(receive: Receive, already: int) -> None:
    """Read and discard the rest of the body, up to DRAIN_LIMIT bytes in all."""
    while already <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        already += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
