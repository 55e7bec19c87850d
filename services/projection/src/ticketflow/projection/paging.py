"""Opaque page tokens for ListOutcomes: a keyset position bound to the filters that produced it.

A token is ``base64url(JSON {"v": 1, "k": [finished_us, ticket_id], "f": filter fingerprint})``.
It is opaque to clients and only encodes where the previous page ended. Keyset paging on
(finished_us, ticket_id) stays correct while rows are added, and across a rebuild's file swap,
because it holds no offset and no server-side state. A token presented with other filters
is refused: it would silently skip or repeat rows. It is not signed, because a forged token only
moves the client to another position in data it may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from ticketflow.contracts.models import TICKET_ID_PATTERN

from .store import OutcomeFilter

__all__ = ["MAX_TOKEN_CHARS", "InvalidPageToken", "decode_token", "encode_token", "fingerprint"]

MAX_TOKEN_CHARS = 512
_TOKEN_VERSION = 1
# Timestamps the proto can carry: years 1..9999, in microseconds since the epoch.
_MIN_US, _MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


class InvalidPageToken(ValueError):
    """The page token is malformed, from another version, or from a request with other filters."""


def fingerprint(flt: OutcomeFilter) -> str:
    canon = json.dumps(
        [flt.status, flt.category, flt.finished_after_us, flt.finished_before_us],
        separators=(",", ":"),
    )
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def encode_token(position: tuple[int, str], flt: OutcomeFilter) -> str:
    body = json.dumps(
        {"v": _TOKEN_VERSION, "k": [position[0], position[1]], "f": fingerprint(flt)},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_token(token: str, flt: OutcomeFilter) -> tuple[int, str]:
    """The keyset position in ``token``; raises `InvalidPageToken`."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidPageToken(f"page_token is longer than {MAX_TOKEN_CHARS} characters")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError too
        raise InvalidPageToken("page_token is not a token returned by ListOutcomes") from err
    if not isinstance(data, dict) or data.get("v") != _TOKEN_VERSION:
        raise InvalidPageToken("page_token is not a token returned by ListOutcomes")
    key = data.get("k")
    if (
        not isinstance(key, list)
        or len(key) != 2
        or type(key[0]) is not int
        or not _MIN_US <= key[0] <= _MAX_US
        or not isinstance(key[1], str)
        or not re.fullmatch(TICKET_ID_PATTERN, key[1])
    ):
        raise InvalidPageToken("page_token is not a token returned by ListOutcomes")
    if data.get("f") != fingerprint(flt):
        raise InvalidPageToken(
            "page_token belongs to a request with other filters; "
            "repeat the filters of the first page, or start again without a token"
        )
    return key[0], key[1]
