"""Errors of the api service and the one JSON shape every non-2xx answer has.

Every error answer is `{"error": {"code": "...", "message": "...", "details": [...]}}`.

Exception hierarchy (each class carries its HTTP status and a stable machine code; the gRPC server
maps the same classes to gRPC status codes, see `grpc_server.GRPC_CODES`):

    ApiError                        500 internal (base)
    ├── BadRequest                  400 bad_request
    ├── InvalidRequest              422 validation_error     (one detail per problem, names the field)
    ├── Unauthorized                401 unauthorized         (answers carry WWW-Authenticate)
    ├── NotFound                    404 not_found
    │   └── TicketNotFound          404 ticket_not_found
    ├── Conflict                    409 conflict
    │   ├── TicketContentConflict   409 ticket_conflict      (same ticket_id, other content)
    │   ├── DecisionRejected        409 decision_rejected    (not waiting, late, duplicate, closed)
    │   └── CancelRejected          409 cancel_rejected      (already decided or finished)
    ├── PayloadTooLarge             413 payload_too_large
    ├── UnsupportedMediaType        415 unsupported_media_type
    └── Unavailable                 503 unavailable
        ├── TemporalUnavailable     503 temporal_unavailable (server unreachable or timing out, or
        │                                                     the circuit is open: not even asked;
        │                                                     with Retry-After)
        ├── TemporalRefused         503 temporal_refused     (server refused: a deployment problem,
        │                                                     e.g. search attribute not registered)
        ├── NoLiveAnswer            503 no_live_answer       (no worker answered the query in time)
        ├── DecisionsNotConfigured  503 decisions_not_configured (no decision signing key)
        ├── DecisionOutcomeUnknown  503 decision_outcome_unknown (the decision was sent, its answer
        │                                                     did not come: it may have been
        │                                                     applied; retry the same request)
        └── ReadModelUnavailable    503 read_model_unavailable (the projection's read API is not
                                                              answering)

Request validation failures are 422 `validation_error` with one detail per problem, whether FastAPI
found them (`RequestValidationError`) or the service layer did (`InvalidRequest`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

__all__ = [
    "ApiError",
    "BadRequest",
    "CancelRejected",
    "Conflict",
    "DecisionOutcomeUnknown",
    "DecisionRejected",
    "DecisionsNotConfigured",
    "InvalidRequest",
    "NoLiveAnswer",
    "NotFound",
    "PayloadTooLarge",
    "ReadModelUnavailable",
    "TemporalRefused",
    "TemporalUnavailable",
    "TicketContentConflict",
    "TicketNotFound",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "error_body",
    "install_error_handlers",
    "validation_details",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})

    def retry_after(self, seconds: int) -> ApiError:
        """Tell the client when to try again (`Retry-After`; gRPC: trailing metadata)."""
        self.headers["Retry-After"] = str(max(1, seconds))
        return self

    def with_note(self, note: str, details: Sequence[Mapping[str, Any]] = ()) -> ApiError:
        """Append a sentence and details (e.g. why the fallback could not answer either).

        Not `add_note`: that is `BaseException`'s (PEP 678), which only tracebacks show.
        """
        sep = " " if self.message.endswith(("?", ".", "!")) else ". "
        self.message = f"{self.message}{sep}{note[:1].upper()}{note[1:]}"
        self.details.extend(dict(d) for d in details)
        return self


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InvalidRequest(ApiError):
    """The request breaks the contract limits; the message names every offending field."""

    status, code = 422, "validation_error"

    @classmethod
    def from_errors(
        cls, errors: Sequence[Mapping[str, Any]], *, loc_prefix: tuple[str, ...] = ()
    ) -> InvalidRequest:
        details = validation_details(errors, loc_prefix=loc_prefix)
        return cls(_summary(details), details=details)


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="ticketflow"'})


class NotFound(ApiError):
    status, code = 404, "not_found"


class TicketNotFound(NotFound):
    code = "ticket_not_found"

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id!r} not found")


class Conflict(ApiError):
    status, code = 409, "conflict"


class TicketContentConflict(Conflict):
    code = "ticket_conflict"

    @classmethod
    def other_content(cls, ticket_id: str) -> TicketContentConflict:
        return cls(
            f"ticket {ticket_id!r} already exists with other content; "
            "use another ticket_id for another ticket"
        )


class DecisionRejected(Conflict):
    code = "decision_rejected"

    def __init__(self, message: str, *, result: str = "conflict", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # For the metrics: conflict (already decided), late, unauthorised (not vouched), invalid.
        self.result = result


class CancelRejected(Conflict):
    code = "cancel_rejected"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class TemporalUnavailable(Unavailable):
    """Temporal did not answer: unreachable, timing out, or not called at all because the api's
    circuit breaker is open after repeated failures (`reason` says which; `Retry-After` when)."""

    code = "temporal_unavailable"

    def __init__(self, address: str, reason: str = "") -> None:
        message = f"Temporal at {address} is unreachable; is the server running?"
        super().__init__(message, details=[{"reason": reason}] if reason else ())
        self.reason = reason


class TemporalRefused(Unavailable):
    code = "temporal_refused"

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"Temporal at {address} refused the call: {reason}")


class NoLiveAnswer(Unavailable):
    code = "no_live_answer"


class DecisionsNotConfigured(Unavailable):
    """This api has no decision key, so the core workers would refuse anything it sent."""

    code = "decisions_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "this api has no decision signing key, so no decision can be taken: set "
            "TICKETFLOW_DECISION_KEYS or TICKETFLOW_DECISION_KEYS_FILE to the keys the core "
            "workers verify with, and restart it"
        )


class DecisionOutcomeUnknown(Unavailable):
    """The decision was sent but no answer came back in time: it may have been applied.

    The same request again is safe and is what the client must do: the update id is derived from
    the decision, so a retry gets the first answer (or applies it once). `Retry-After` says when.
    """

    code = "decision_outcome_unknown"
    RETRY_AFTER_S = 1

    def __init__(self, why: str, *, details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(
            "the decision may have been applied; retry the same request (it is applied once, "
            f"and a retry gets the first answer): {why}",
            details=details,
            headers={"Retry-After": str(self.RETRY_AFTER_S)},
        )


class ReadModelUnavailable(Unavailable):
    code = "read_model_unavailable"

    @classmethod
    def unreachable(cls, address: str, reason: str = "") -> ReadModelUnavailable:
        return cls(
            f"the read model at {address} is unreachable; is the projection running?",
            details=[{"read_model": reason}] if reason else (),
        )


def error_body(code: str, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)}}


def _code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        jsonable_encoder(error_body(exc.code, exc.message, exc.details)),
        exc.status,
        headers=exc.headers,
    )


def _explain(err: Mapping[str, Any]) -> str:
    kind, loc = err.get("type", ""), tuple(err.get("loc", ()))
    if kind == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "")
        return f"malformed JSON{': ' + reason if reason else ''}"
    if loc == ("body",) and kind in {"model_attributes_type", "model_type", "dict_type"}:
        return "request body must be a JSON object"
    return str(err.get("msg", ""))


def validation_details(
    errors: Sequence[Mapping[str, Any]], *, loc_prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic errors as details: location, message and type only.

    Never the input: echoing it could reflect megabytes or secrets.
    """
    return [
        {
            "loc": [*loc_prefix, *err.get("loc", ())],
            "msg": _explain(err),
            "type": err.get("type", ""),
        }
        for err in errors
    ]


def _summary(details: Sequence[Mapping[str, Any]]) -> str:
    summary = "; ".join(
        f"{'.'.join(str(p) for p in d['loc']) or 'request'}: {d['msg']}" for d in details[:5]
    )
    return f"invalid request: {summary}"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    return JSONResponse(
        jsonable_encoder(error_body("validation_error", _summary(details), details)), 422
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return JSONResponse(
        error_body(_code_for_status(exc.status_code), message),
        exc.status_code,
        headers=exc.headers,
    )


def _method_not_allowed(routes: Sequence[BaseRoute]) -> Callable[[Request, Exception], Any]:
    """405 with every method the path has in `Allow` (the router names one route's only)."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        methods: set[str] = set()
        for route in routes:
            if isinstance(route, Route) and route.methods:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    methods |= route.methods
        allowed = ", ".join(sorted(methods))
        return JSONResponse(
            error_body(
                "method_not_allowed",
                f"method {request.method} is not allowed on {request.url.path}; use {allowed}",
            ),
            405,
            headers={"Allow": allowed},
        )

    return handler


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A true bug: log it whole, answer without internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal", "internal server error"), 500)


def install_error_handlers(app: FastAPI, *, routes: Sequence[BaseRoute] = ()) -> None:
    """The handlers of every error; `routes` are the api's, whose methods a 405 lists."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(405, _method_not_allowed(routes))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
