"""Approver authentication: `Authorization: Bearer <token>` against `TICKETFLOW_APPROVER_TOKENS`.

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

from .deps import SettingsDep
from .errors import Unauthorized
from .settings import Approver

__all__ = ["ApproverDep", "TokenVerifier", "bearer_scheme", "require_approver"]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApproverToken",
    description="An approver's token from TICKETFLOW_APPROVER_TOKENS (`name:token,...`).",
)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenVerifier:
    def __init__(self, approvers: Iterable[Approver]) -> None:
        self._entries = [(a.name, _digest(a.token)) for a in approvers]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def identify(self, presented: str) -> str | None:
        """The approver whose token this is, or None. Constant time in the token's content."""
        presented_digest = _digest(presented)
        found: str | None = None
        for name, digest in self._entries:
            if hmac.compare_digest(digest, presented_digest):
                found = name  # keep looping: no early exit
        return found


async def require_approver(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """The approver's name, or 401 with `WWW-Authenticate: Bearer`."""
    if credentials is None:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    verifier = TokenVerifier(settings.approvers)
    if not verifier:
        # Fail closed, but tell the operator why every token is refused.
        raise Unauthorized("no approver tokens are configured (TICKETFLOW_APPROVER_TOKENS)")
    name = verifier.identify(credentials.credentials)
    if name is None:
        raise Unauthorized("invalid bearer token")
    return name


ApproverDep = Annotated[str, Depends(require_approver)]
