"""Key material from configuration, one key per side of the card (C-1).

``SSCARD_<NAME>_KEY`` (hex, at least 32 hex digits) wins; otherwise the key lives in
``$SSCARD_KEY_DIR/<name>.key`` (default ``var/keys``). A missing key file is created
(32 random bytes, mode 0600) only where ``SSCARD_CREATE_KEYS=1`` says so (the demo
does): a production key that went missing must stop the service, not be replaced by
a new key under which no stored password verifies.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
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
        _create(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise KeyUnavailable(f"{path} does not hold a hex key") from None
    if len(key) < 16:
        raise KeyUnavailable(f"{path} holds fewer than 16 bytes")
    return key


def _create(path: Path) -> None:
    """Write a new random key to ``path`` unless one appears there first.

    The key is written in full to a private temporary file and then linked into place,
    which fails if the name exists: a reader never sees a half-written key, and of two
    processes or threads creating it at once exactly one key wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):  # made at the same moment: that one stands
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
