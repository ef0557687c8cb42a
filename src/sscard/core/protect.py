"""Personal data at rest: versioned data keys (AES-256-GCM) and keyed blind indexes.

Pure: the stdlib and ``cryptography``, no SQLAlchemy. Each side of the card (C-1) has
its own two keyrings: a **data** keyring that seals values (``v<version>:`` + base64
of a random 96-bit nonce and the AES-256-GCM ciphertext; the associated data names the
table and column, so a sealed value cannot be moved to another column), and an
**index** keyring whose HMAC-SHA256 of the normalised value (``h<version>:<hex>``)
is what lookups and uniqueness use. Every configured version opens (data) or matches
(index); only the newest seals and indexes new values.

Configuration, per key name (``data``, ``index``, ``bank_data``, ``bank_index``):
``SSCARD_<NAME>_KEYS="2:<hex>,1:<hex>"`` (newest first), else ``SSCARD_<NAME>_KEY``
(version 1), else the key files ``$SSCARD_KEY_DIR/<name>.key`` (version 1) and
``<name>.v<n>.key`` (version n), through :func:`sscard.core.keys.load_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sscard.core.errors import DomainError
from sscard.core.keys import KeyUnavailable, key_dir, load_key

NONCE_BYTES = 12  # 96-bit random nonce per value (NIST SP 800-38D)
TAG_BYTES = 16
DATA_KEY_BYTES = 32  # AES-256
INDEX_KEY_MIN_BYTES = 16
BLIND_LENGTH = 72  # "h" + version + ":" + 64 hex digits, with room for the version
_SEALED = re.compile(r"v([1-9][0-9]{0,5}):([A-Za-z0-9+/]+={0,2})")
_BLIND = re.compile(r"h([1-9][0-9]{0,5}):[0-9a-f]{64}")


class DataUnreadable(DomainError):
    """A stored value does not open: tampered, moved, or sealed under a missing key."""

    code = "data_unreadable"
    status = 500
    title = "Stored personal data cannot be read"


@dataclass(frozen=True)
class Side:
    """One side's key names: the social security side's or the bank's (C-1)."""

    name: str
    data: str
    index: str


SOCIAL = Side("social", data="data", index="index")
BANK = Side("bank", data="bank_data", index="bank_index")
SIDES = (SOCIAL, BANK)

# What a blind index hashes a value as (part of the HMAC input).
ID_NUMBER = "id_number"
BANK_CARD_NUMBER = "bank_card_number"


def sealed_length(max_chars: int, *, bytes_per_char: int = 1) -> int:
    """The column width that holds a sealed value of up to ``max_chars`` characters."""
    raw = NONCE_BYTES + max_chars * bytes_per_char + TAG_BYTES
    return len("v999999:") + 4 * math.ceil(raw / 3)


def normalise(value: str) -> str:
    """The form a blind index hashes: no whitespace, upper case (ID numbers' ``x``)."""
    return "".join(value.split()).upper()


def sealed_version(stored: str) -> int | None:
    """The data key version a stored value is sealed under (None if it is not sealed)."""
    m = _SEALED.fullmatch(stored)
    return int(m.group(1)) if m else None


def blind_version(stored: str) -> int | None:
    """The index key version a stored blind index value was made with."""
    m = _BLIND.fullmatch(stored)
    return int(m.group(1)) if m else None


class DataKeyring:
    """Seals under the newest version; opens under any configured one."""

    def __init__(self, keys: Mapping[int, bytes], *, name: str = "data") -> None:
        if not keys:
            raise KeyUnavailable(f"no '{name}' key configured")
        for version, key in keys.items():
            if version < 1:
                raise KeyUnavailable(f"'{name}' key versions start at 1, not {version}")
            if len(key) != DATA_KEY_BYTES:
                raise KeyUnavailable(
                    f"'{name}' key version {version} must hold 32 bytes (64 hex digits) "
                    f"for AES-256, not {len(key)}"
                )
        self.name = name
        self.versions = tuple(sorted(keys, reverse=True))
        self.current = self.versions[0]
        self._aead = {v: AESGCM(k) for v, k in keys.items()}

    def seal(self, plaintext: str, *, context: str) -> str:
        """``plaintext`` sealed under the current version, bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"v{self.current}:" + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, *, context: str) -> str:
        """The plaintext of a sealed value; DataUnreadable rather than anything else."""
        m = _SEALED.fullmatch(stored)
        if m is None:
            raise DataUnreadable(f"{context} holds a value that is not sealed data")
        version = int(m.group(1))
        aead = self._aead.get(version)
        if aead is None:
            raise DataUnreadable(
                f"{context} holds a value sealed under '{self.name}' key version {version}, "
                f"which is not configured (configured: {', '.join(map(str, self.versions))})"
            )
        try:
            blob = base64.b64decode(m.group(2), validate=True)
            if len(blob) < NONCE_BYTES + TAG_BYTES:
                raise ValueError
            plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode())
            return plain.decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise DataUnreadable(
                f"{context}: a sealed value fails its integrity check under '{self.name}' key "
                f"version {version} (tampered with, copied from another column, or the key "
                "is not the one it was sealed with)"
            ) from None


class IndexKeyring:
    """Keyed hashes for equality lookups; every version matches during a rotation."""

    def __init__(self, keys: Mapping[int, bytes], *, name: str = "index") -> None:
        if not keys:
            raise KeyUnavailable(f"no '{name}' key configured")
        for version, key in keys.items():
            if version < 1:
                raise KeyUnavailable(f"'{name}' key versions start at 1, not {version}")
            if len(key) < INDEX_KEY_MIN_BYTES:
                raise KeyUnavailable(f"'{name}' key version {version} holds fewer than 16 bytes")
        self.name = name
        self.versions = tuple(sorted(keys, reverse=True))
        self.current = self.versions[0]
        self._keys = dict(keys)

    def blind(self, value: str, *, kind: str, version: int | None = None) -> str:
        """The blind index of ``value`` (a ``kind`` such as ``id_number``)."""
        v = self.current if version is None else version
        message = kind.encode() + b"\x00" + normalise(value).encode()
        return f"h{v}:" + hmac.new(self._keys[v], message, hashlib.sha256).hexdigest()

    def blinds(self, value: str, *, kind: str) -> list[str]:
        """The blind index of ``value`` under every configured version, newest first."""
        return [self.blind(value, kind=kind, version=v) for v in self.versions]


@dataclass(frozen=True)
class Keyrings:
    data: DataKeyring
    index: IndexKeyring


def _parse_ring(name: str, spec: str) -> dict[int, bytes]:
    variable = f"SSCARD_{name.upper()}_KEYS"
    keys: dict[int, bytes] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        version, sep, hexkey = entry.partition(":")
        try:
            if not sep:
                raise ValueError
            n = int(version)
            keys[n] = bytes.fromhex(hexkey.strip())
        except ValueError:
            raise KeyUnavailable(
                f"{variable} must read '<version>:<hex>,<version>:<hex>' (newest first)"
            ) from None
    if not keys:
        raise KeyUnavailable(f"{variable} lists no key")
    return keys


def load_versions(name: str) -> dict[int, bytes]:
    """Every configured version of the key called ``name`` (see the module doc)."""
    ring = os.environ.get(f"SSCARD_{name.upper()}_KEYS")
    if ring:
        return _parse_ring(name, ring)
    if os.environ.get(f"SSCARD_{name.upper()}_KEY"):
        return {1: load_key(name)}
    directory: Path = key_dir()
    keys: dict[int, bytes] = {}
    for path in directory.glob(f"{name}.v*.key"):
        version = path.name[len(name) + 2 : -len(".key")]
        if version.isdigit() and int(version) >= 1:
            keys[int(version)] = _read(path)
    if (directory / f"{name}.key").exists() or not keys:
        keys[1] = load_key(name)  # creates it only under SSCARD_CREATE_KEYS=1
    return keys


def _read(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise KeyUnavailable(f"{path} does not hold a hex key") from None


def load_keyrings(side: Side) -> Keyrings:
    """A side's data and index keyrings, read from configuration now."""
    return Keyrings(
        data=DataKeyring(load_versions(side.data), name=side.data),
        index=IndexKeyring(load_versions(side.index), name=side.index),
    )


_LOADED: dict[str, Keyrings] = {}


def keyrings(side: Side) -> Keyrings:
    """A side's keyrings, read from configuration once per process."""
    found = _LOADED.get(side.name)
    if found is None:
        found = _LOADED[side.name] = load_keyrings(side)
    return found


def install(side: Side, rings: Keyrings | None) -> None:
    """Use ``rings`` for ``side`` from now on (None: read configuration again)."""
    if rings is None:
        _LOADED.pop(side.name, None)
    else:
        _LOADED[side.name] = rings
