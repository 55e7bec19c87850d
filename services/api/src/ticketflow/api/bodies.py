"""JSON request bodies that do not parse: a 422 in the api's error shape, after authentication.

FastAPI parses a JSON body before any dependency runs, and answers a body that is not UTF-8, or
is nested too deeply for the parser, with a bare 400 "There was an error parsing the body" that
no route documents. `JsonBodyRoute` (the route class of every api route) parses the body first
and turns any parse failure into 422 `validation_error` (`json_invalid`: "malformed JSON: ..."),
which every body route documents. A route that requires an approver checks the bearer token
before it says anything about the body: without a valid token the answer is 401, whatever the
body. A body that parses is kept on the request (Starlette caches `Request.json()`), so FastAPI
does not parse it again.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from .auth import bearer_scheme, require_approver
from .deps import get_settings

__all__ = ["JsonBodyRoute", "json_problem"]


def _is_json(content_type: str | None) -> bool:
    """The content types FastAPI parses as JSON (the others are refused later, 415)."""
    if not content_type:
        return False
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _invalid(why: str, *loc: int) -> dict[str, Any]:
    return {"type": "json_invalid", "loc": ("body", *loc), "msg": why, "ctx": {"error": why}}


async def json_problem(request: Request) -> dict[str, Any] | None:
    """Why the request's JSON body does not parse (a pydantic-style error), or None."""
    if not _is_json(request.headers.get("content-type")):
        return None
    body = await request.body()
    if not body.strip():
        return None  # `routes.require_json_body` answers an empty body
    try:
        body.decode("utf-8")
        await request.json()
    except UnicodeDecodeError as exc:
        return _invalid(f"the body is not valid UTF-8 (byte {exc.start})")
    except json.JSONDecodeError as exc:
        return _invalid(exc.msg, exc.pos)
    except RecursionError:
        return _invalid("the body is nested too deeply")
    except ValueError as exc:
        return _invalid(str(exc) or type(exc).__name__)
    return None


class JsonBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        authenticate_first = any(d.call is require_approver for d in self.dependant.dependencies)

        async def parsed_first(request: Request) -> Response:
            problem = await json_problem(request)
            if problem is not None:
                if authenticate_first:
                    await require_approver(
                        await get_settings(request), await bearer_scheme(request)
                    )
                raise RequestValidationError([problem])
            return await handler(request)

        return parsed_first
