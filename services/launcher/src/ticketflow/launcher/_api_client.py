"""The operator CLI's side of the api's HTTP interface: where it is, the token, bounded retries.

Every request is built once and the very same ``httpx.Request`` (same body, same token) is sent
again on a retry. That is what makes retrying a decision safe: the api derives the Temporal update
id from the decision, so the same decision again is applied once and gets the first answer
(services/api, ``_decide.py``). The retries themselves are tenacity's, bounded by a number of
tries and a total time, waiting what the api's ``Retry-After`` says (else a capped backoff).
"""

from __future__ import annotations

import email.utils
import sys
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from ticketflow.runtime.settings import ENV_PREFIX

from .data_dir import TOKEN_FILE

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_NOT_FOUND",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "ApiClient",
    "ApiFailure",
    "CliSettings",
    "Retries",
    "TokenError",
    "read_token",
]

EXIT_REFUSED = 1  # the api refused the request (4xx other than below) or failed (5xx but 503)
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4  # someone else decided, the ticket is not waiting, the window closed
EXIT_UNAVAILABLE = 5  # 503 or no answer (refused connection, timeout) after the bounded retries

OUTCOME_UNKNOWN = "decision_outcome_unknown"
# 503s that no retry can fix: the deployment is wrong (no decision key, Temporal refuses).
_NOT_RETRIED = frozenset({"decisions_not_configured", "temporal_refused"})
# Above the api's own wait for a decision (TICKETFLOW_DECIDE_TIMEOUT_S, 10 s), so its 503 comes
# first; a longer one is still safe: no answer in time is retried as "may have been applied".
REQUEST_TIMEOUT_S = 30.0
_MAX_WAIT_S = 10.0  # one wait at most, whatever Retry-After says (the total is bounded anyway)


class CliSettings(BaseSettings):
    """``TICKETFLOW_API_URL``, ``TICKETFLOW_TOKEN``, ``TICKETFLOW_TOKEN_FILE``, and
    ``TICKETFLOW_DATA_DIR`` (where `ticketflow up` writes ``approver-token``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True
    )

    api_url: str = "http://127.0.0.1:8000"
    token: SecretStr | None = None
    token_file: Path | None = None
    data_dir: Path = Path("var")

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = httpx.URL(value.strip())
        if url.scheme not in {"http", "https"} or not url.host:
            raise ValueError(
                "expected the api's address, e.g. http://127.0.0.1:8000 (here or in --api)"
            )
        return str(url).rstrip("/")


class TokenError(Exception):
    """The token cannot be read: the message says which file and what to do (never the token)."""


def read_token(settings: CliSettings, token_file: Path | None) -> str | None:
    """The bearer token: ``--token-file``, else ``TICKETFLOW_TOKEN``, else ``TICKETFLOW_TOKEN_FILE``,
    else ``<data dir>/approver-token`` if `ticketflow up` made one; None without any.

    A file holds the token on its first line that is neither blank nor a ``#`` comment, as
    `ticketflow up` writes it (the token and a newline).
    """
    path = token_file or (None if settings.token else settings.token_file)
    if path is None and settings.token is not None:
        return _checked(settings.token.get_secret_value().strip(), "TICKETFLOW_TOKEN")
    if path is None:
        dev = settings.data_dir / TOKEN_FILE
        if not dev.is_file():
            return None
        path = dev
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8 text"
        raise TokenError(
            f"cannot read the token file {path}: {why}; give --token-file, TICKETFLOW_TOKEN_FILE "
            "or TICKETFLOW_TOKEN"
        ) from None
    lines = (line.strip() for line in text.splitlines())
    token = next((line for line in lines if line and not line.startswith("#")), "")
    return _checked(token, f"the token file {path}")


def _checked(token: str, where: str) -> str:
    if not token or any(c.isspace() or not c.isprintable() or not c.isascii() for c in token):
        raise TokenError(f"{where} holds no usable token: one line of printable ASCII expected")
    return token


class ApiFailure(Exception):
    """An answer that is not a success, or no answer: ``exit_code`` says which kind."""

    def __init__(self, exit_code: int, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.code = code


class _Retryable(Exception):
    """One failed try that another try of the same request may fix."""

    def __init__(self, failure: ApiFailure, *, retry_after: float | None, maybe_applied: bool):
        super().__init__(failure.message)
        self.failure = failure
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied  # a decision was sent and its answer did not come


@dataclass(frozen=True)
class Retries:
    """How hard to try: at most ``tries`` sends within ``total_s`` seconds."""

    tries: int = 5
    total_s: float = 60.0


class ApiClient:
    """The api over HTTP. Methods return the api's JSON or raise ``ApiFailure``."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        retries: Retries = Retries(),
        timeout_s: float = REQUEST_TIMEOUT_S,
        progress: TextIO | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self._base_url = base_url
        self._retries = retries
        self._progress = progress or sys.stderr

    def close(self) -> None:
        self._http.close()

    def list_tickets(
        self, status: str | None, limit: int | None, page_token: str | None
    ) -> dict[str, Any]:
        params = {"status": status, "limit": limit, "page_token": page_token}
        query = {k: v for k, v in params.items() if v is not None}
        return self._call(self._http.build_request("GET", "/tickets", params=query))

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        return self._call(self._http.build_request("GET", f"/tickets/{_segment(ticket_id)}"))

    def decide(self, ticket_id: str, *, approved: bool, reason: str) -> dict[str, Any]:
        body = {"approved": approved, "reason": reason}
        path = f"/tickets/{_segment(ticket_id)}/decision"
        return self._call(self._http.build_request("POST", path, json=body), decision=True)

    def cancel(self, ticket_id: str) -> dict[str, Any]:
        """Cancel an undecided ticket; safe to send again (a retry answers `already: true`)."""
        path = f"/tickets/{_segment(ticket_id)}/cancel"
        return self._call(self._http.build_request("POST", path), decision=True)

    def _call(self, request: httpx.Request, *, decision: bool = False) -> dict[str, Any]:
        started = time.monotonic()
        retrying = Retrying(
            stop=stop_after_attempt(self._retries.tries) | stop_after_delay(self._retries.total_s),
            # Never wait past the total: the last try still gets its chance within it.
            wait=lambda state: min(
                _wait(state), max(0.0, self._retries.total_s - (state.seconds_since_start or 0.0))
            ),
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._say_retrying,
            reraise=True,
        )
        try:
            return retrying(self._send, request, decision)
        except _Retryable as last:
            tries = retrying.statistics.get("attempt_number", 1)
            raise self._gave_up(last, tries, time.monotonic() - started) from None

    def _send(self, request: httpx.Request, decision: bool) -> dict[str, Any]:
        """One try of ``request``, the same object every time (so the same bytes)."""
        try:
            response = self._http.send(request)
        except httpx.ConnectError as err:  # nothing was sent
            failure = ApiFailure(EXIT_UNAVAILABLE, f"cannot connect to the api: {err}")
            raise _Retryable(failure, retry_after=None, maybe_applied=False) from err
        except httpx.TransportError as err:  # sent; the answer did not come (timeout, reset)
            what = type(err).__name__
            failure = ApiFailure(EXIT_UNAVAILABLE, f"no answer from the api ({what}: {err})")
            raise _Retryable(failure, retry_after=None, maybe_applied=decision) from err
        if response.is_success:
            try:
                return dict(response.json())
            except (ValueError, TypeError):
                raise ApiFailure(
                    EXIT_REFUSED,
                    f"the answer from {self._base_url} is not the api's JSON: is --api / "
                    "TICKETFLOW_API_URL the ticketflow api's address?",
                ) from None
        code, message = _error_of(response)
        status = response.status_code
        if status == 503:
            failure = ApiFailure(EXIT_UNAVAILABLE, message, code=code)
            if code in _NOT_RETRIED:
                raise failure
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise _Retryable(
                failure, retry_after=retry_after, maybe_applied=code == OUTCOME_UNKNOWN
            )
        if status == 404:
            raise ApiFailure(EXIT_NOT_FOUND, message, code=code)
        if status == 409:
            raise ApiFailure(EXIT_CONFLICT, message, code=code)
        if status in (401, 403):
            raise ApiFailure(
                EXIT_REFUSED,
                f"{message}: set TICKETFLOW_TOKEN (or --token-file / TICKETFLOW_TOKEN_FILE) to "
                "an approver's token (`ticketflow up` keeps one in <data dir>/approver-token), "
                "or a viewer's token for reads",
                code=code,
            )
        raise ApiFailure(EXIT_REFUSED, f"{message} (HTTP {status})", code=code)

    def _say_retrying(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, _Retryable)
        step = f"({state.attempt_number + 1}/{self._retries.tries})"
        if exc.maybe_applied:
            line = f"the decision may have been applied; asking again {step}"
        else:
            line = f"{exc.failure.message}; trying again {step}"
        print(f"ticketflow: {line}", file=self._progress, flush=True)

    def _gave_up(self, last: _Retryable, tries: int, elapsed: float) -> ApiFailure:
        after = f"after {tries} {'try' if tries == 1 else 'tries'} in {elapsed:.0f}s"
        if last.maybe_applied:
            what = (
                f"the decision may have been applied, but the api did not confirm it {after} "
                f"({last.failure.message}). Run the same command again (the same decision is "
                "applied once and gets the first answer), or `ticketflow tickets show` it"
            )
        else:
            what = (
                f"{last.failure.message} ({after}). Is the api at {self._base_url} running "
                "(`ticketflow up`), and is --api / TICKETFLOW_API_URL its address? "
                "Try again in a moment"
            )
        return ApiFailure(EXIT_UNAVAILABLE, what, code=last.failure.code)


def _wait(state: RetryCallState) -> float:
    """What the api's Retry-After says, else an exponential backoff; never over ``_MAX_WAIT_S``."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retryable) and exc.retry_after is not None:
        return min(exc.retry_after, _MAX_WAIT_S)
    return float(_backoff(state))


_backoff = wait_exponential(multiplier=0.5, min=0.5, max=_MAX_WAIT_S)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The api's ``{"error": {"code", "message"}}``, or the status and a bit of the text."""
    try:
        error = response.json()["error"]
        return str(error.get("code", "")), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200]
        return "", text or response.reason_phrase or f"HTTP {response.status_code}"


def _segment(ticket_id: str) -> str:
    """The id as one path segment (an id with a slash must not reach another route)."""
    return urllib.parse.quote(ticket_id, safe="")
