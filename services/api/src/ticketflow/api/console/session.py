"""The console's sign-in: a signed session cookie and the CSRF token of its forms.

The cookie (`ticketflow_console`, HttpOnly, SameSite=Strict, Secure over https, path /console)
holds, signed and timestamped with itsdangerous: the approver's name, an HMAC of the token they
signed in with (never the token itself), and a random CSRF secret. Every request checks the
signature, the age (`TICKETFLOW_CONSOLE_SESSION_S`) and that the token is still an approver's
token now (the HMAC against every configured token): removing a token from
`TICKETFLOW_APPROVER_TOKENS` signs its sessions out. No server-side store, so any number of api
processes serve the same sessions: the signing key is derived from the first decision key (the
page tokens' way), or random per process without one (sessions then end with the process).

Every form carries the CSRF token (a hidden field); a POST without the session's token is refused.
The sign-in form, before any session exists, uses a double-submit cookie
(`ticketflow_console_login`) for the same purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from ticketflow.contracts.decision_signing import DecisionKey

from ..settings import Settings

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "PATH",
    "ConsoleSession",
    "SessionSigner",
]

COOKIE = "ticketflow_console"
LOGIN_COOKIE = "ticketflow_console_login"
PATH = "/console"
_KEY_DOMAIN = b"ticketflow/api/console-session/v1"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    approver: str
    csrf: str

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionSigner:
    """Makes, reads and clears session cookies."""

    def __init__(self, settings: Settings, keys: Sequence[DecisionKey] = ()) -> None:
        secret = keys[0].secret if keys else secrets.token_bytes(32)
        self._key = hmac.new(secret, _KEY_DOMAIN, hashlib.sha256).digest()
        self._serializer = URLSafeTimedSerializer(self._key, salt="session")
        self._settings = settings

    def _token_mac(self, token: str) -> str:
        return hmac.new(self._key, token.encode("utf-8", "surrogatepass"), "sha256").hexdigest()

    def start(self, request: Request, response: Response, approver: str, token: str) -> None:
        value = self._serializer.dumps(
            {"a": approver, "t": self._token_mac(token), "c": secrets.token_urlsafe(24)}
        )
        self._set(request, response, COOKIE, value, int(self._settings.console_session_s))

    def read(self, request: Request) -> ConsoleSession | None:
        """The signed-in approver, or None (no cookie, altered, expired, or the token revoked)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=int(self._settings.console_session_s))
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        approver, mac, csrf = data.get("a"), data.get("t"), data.get("c")
        if not (isinstance(approver, str) and isinstance(mac, str) and isinstance(csrf, str)):
            return None
        # Still an approver's token now? (every entry compared: no early exit)
        current = None
        for holder in self._settings.approvers:
            if hmac.compare_digest(self._token_mac(holder.token), mac):
                current = holder.name
        if current != approver:
            return None
        return ConsoleSession(approver=approver, csrf=csrf)

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")

    @staticmethod
    def login_csrf(request: Request) -> str:
        """The sign-in form's CSRF token: the browser's, or a new one (`set_login_csrf` it)."""
        return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)

    def set_login_csrf(self, request: Request, response: Response, token: str) -> None:
        self._set(request, response, LOGIN_COOKIE, token, 3600)

    @staticmethod
    def login_csrf_ok(request: Request, presented: str | None) -> bool:
        expected = request.cookies.get(LOGIN_COOKIE)
        return bool(expected and presented and hmac.compare_digest(expected, presented))

    @staticmethod
    def _set(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
