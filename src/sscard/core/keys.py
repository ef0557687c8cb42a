"""Key material from configuration, one key per side of the card (C-1).

``SSCARD_<NAME>_KEY`` (hex, at least 32 hex digits) wins; otherwise the key lives in
``$SSCARD_KEY_DIR/<name>.key`` (default ``var/keys``). A missing key file is created
(32 random bytes, mode 0600) only where ``SSCARD_CREATE_KEYS=1`` says so (the demo
does): a production key that went missing must stop the service, not be replaced by
a new key under which no stored password verifies.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sscard.core.errors import DomainError

SOCIAL = "social"  # the social security application: medical consumption password
BANK = "bank"  # the issuing bank's financial application: financial password


class KeyUnavailable(DomainError):
    code = "key_unavailable"
    status = 500
    title = "Key material unavailable"


def key_dir() -> Path:
    """Where key files live: ``$SSCARD_KEY_DIR``, default ``var/keys``."""
    return Path(os.environ.get("SSCARD_KEY_DIR", "var/keys"))


def load_key(name: str) -> bytes:
    """The key called ``name``, from the environment or its key file."""
    env = os.environ.get(f"SSCARD_{name.upper()}_KEY")
    if env:
        try:
            key = bytes.fromhex(env)
        except ValueError:
            raise KeyUnavailable(f"SSCARD_{name.upper()}_KEY must be hex") from None
        if len(key) < 16:
            raise KeyUnavailable(f"SSCARD_{name.upper()}_KEY must hold at least 16 bytes")
        return key
    path = key_dir() / f"{name}.key"
    if not path.exists():
        if os.environ.get("SSCARD_CREATE_KEYS") != "1":
            raise KeyUnavailable(
                f"no key '{name}': set SSCARD_{name.upper()}_KEY (hex) or put it in {path} "
                "(SSCARD_CREATE_KEYS=1 creates missing keys, for a demo or a first install)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created at the same moment by another process
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise KeyUnavailable(f"{path} does not hold a hex key") from None
    if len(key) < 16:
        raise KeyUnavailable(f"{path} holds fewer than 16 bytes")
    return key
