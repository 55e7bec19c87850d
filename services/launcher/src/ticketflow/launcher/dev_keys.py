"""The dev decision key: without keys configured, ``ticketflow up`` makes one shared key for the
api (which signs decisions) and the core worker (which refuses unsigned ones), so a dev stack is
secure by default (docs/architecture.md, "Configuration").

``<data dir>/decision-keys`` (mode 0600, reused on the next start) holds ``dev-<id>:<base64>``;
both services get its path as ``TICKETFLOW_DECISION_KEYS_FILE``, never the key itself.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from ticketflow.contracts.decision_signing import parse_decision_keys

__all__ = ["DECISION_KEYS_FILE", "dev_decision_keys"]

DECISION_KEYS_FILE = "decision-keys"


def dev_decision_keys(data_dir: Path) -> tuple[Path, str, bool]:
    """The dev key file, made on first use (0600). Returns (path, signing key id, created).

    A file that is empty or does not parse is replaced by a new key (it could sign nothing).
    """
    path = data_dir / DECISION_KEYS_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        try:
            keys = parse_decision_keys(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            keys = ()
        if keys:
            return path, keys[0].key_id, False
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    key_id = f"dev-{secrets.token_hex(4)}"
    secret = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    with os.fdopen(fd, "w") as handle:
        handle.write("# made by `ticketflow up`: the api signs decisions, the core worker checks\n")
        handle.write(f"{key_id}:{secret}\n")
    return path, key_id, True
