"""Who may do what: `Authorization: Bearer <token>` against the configured tokens.

- Decisions need an approver's token (`TICKETFLOW_APPROVER_TOKENS`); without any configured,
  every decision is refused (fail closed).
- Reads (GET /tickets, GET /tickets/{id}, gRPC GetTicket) need a viewer's or an approver's token
  once `TICKETFLOW_VIEWER_TOKENS` is set (approvers must see the queue they work on); without it
  reads are open, the dev default, and the api says so at start (docs/architecture.md, "Who may
  read what").
- Intake (POST /tickets, SubmitTicket) and the probes need no token.

The comparison takes the same time whichever token matches, or none: both sides are hashed to a
fixed length first (so a length mismatch is not visible) and every configured token is compared
with `hmac.compare_digest`, without an early exit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._metrics import decided
from .deps import SettingsDep
from .errors import Unauthorized
from .settings import Settings, TokenHolder

__all__ = [
    "GRPC_HINT",
    "HTTP_HINT",
    "ApproverDep",
    "ReaderDep",
    "TokenVerifier",
    "bearer_scheme",
    "bearer_token",
    "identify_approver",
    "identify_reader",
    "read_scheme",
    "require_approver",
    "require_reader",
]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApproverToken",
    description="An approver's token from TICKETFLOW_APPROVER_TOKENS (`name:token,...`).",
)
read_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ReadToken",
    description=(
        "A viewer's token from TICKETFLOW_VIEWER_TOKENS or an approver's token from "
        "TICKETFLOW_APPROVER_TOKENS. Needed only when the api has TICKETFLOW_VIEWER_TOKENS set; "
        "without it reads are open."
    ),
)

HTTP_HINT = "send 'Authorization: Bearer <token>'"
GRPC_HINT = "send the metadata 'authorization: Bearer <token>'"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenVerifier:
    def __init__(self, holders: Iterable[TokenHolder]) -> None:
        self._entries = [(h.name, _digest(h.token)) for h in holders]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def identify(self, presented: str) -> str | None:
        """Whose token this is, or None. Constant time in the token's content."""
        presented_digest = _digest(presented)
        found: str | None = None
        for name, digest in self._entries:
            if hmac.compare_digest(digest, presented_digest):
                found = name  # keep looping: no early exit
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization` value `Bearer <token>` (scheme in any case), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def identify_reader(settings: Settings, token: str | None, hint: str = HTTP_HINT) -> str | None:
    """The reader's name; None when reads are open. `Unauthorized` without a valid token."""
    if not settings.viewers:
        return None
    if token is None:
        raise Unauthorized(
            f"missing bearer token: reading tickets needs a viewer's or an approver's token; {hint}"
        )
    name = TokenVerifier((*settings.viewers, *settings.approvers)).identify(token)
    if name is None:
        raise Unauthorized("invalid bearer token: not a viewer's or an approver's token")
    return name


async def require_reader(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(read_scheme)],
) -> str | None:
    """The reader's name, None when reads are open, or 401 with `WWW-Authenticate: Bearer`."""
    return identify_reader(settings, credentials.credentials if credentials else None)


async def require_approver(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The approver's name, or 401 with `WWW-Authenticate: Bearer`."""
    try:
        return identify_approver(settings, credentials.credentials if credentials else None)
    except Unauthorized:
        decided("unauthorised")  # a decision refused before the service layer sees it
        raise


def identify_approver(settings: Settings, token: str | None, hint: str = HTTP_HINT) -> str:
    """The approver's name (HTTP, gRPC and the console alike); `Unauthorized` otherwise."""
    if token is None:
        raise Unauthorized(f"missing bearer token: {hint}")
    verifier = TokenVerifier(settings.approvers)
    if not verifier:
        # Fail closed, but tell the operator why every token is refused.
        raise Unauthorized("no approver tokens are configured (TICKETFLOW_APPROVER_TOKENS)")
    name = verifier.identify(token)
    if name is None:
        raise Unauthorized("invalid bearer token")
    return name


ApproverDep = Annotated[str, Depends(require_approver)]
ReaderDep = Annotated[str | None, Depends(require_reader)]
