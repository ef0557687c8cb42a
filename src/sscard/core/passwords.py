"""Six-digit card passwords (P-1 to P-3): rules and slow, keyed hashing.

Each side of the card hashes with its own key (C-1: independent key systems): the
password is first keyed with HMAC-SHA256 under the side's key, then hashed with
argon2id and a random salt. A stolen table alone does not allow offline guessing
of the million possible PINs without the side's key.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
from datetime import date

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sscard.core.errors import InvalidInput

SIX_DIGITS = re.compile(r"[0-9]{6}")
# Tuned for a counter: ~20 ms per check on one core, 19 MiB (OWASP's argon2id minimum).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_new_password(password: str, *, birth_date: date | None, field: str) -> str:
    """Refuse a password that is not six digits or is trivial to guess (P-1)."""
    if not SIX_DIGITS.fullmatch(password or ""):
        raise InvalidInput(
            "a card password is exactly six digits", field=field, reason="not_six_digits"
        )
    digits = [int(c) for c in password]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    if len(set(digits)) == 1:
        why = "all digits are the same"
    elif steps in ({1}, {-1}):
        why = "the digits run in sequence"
    elif password[:2] * 3 == password:
        why = "it repeats one pair of digits"
    elif password[:3] * 2 == password:
        why = "it repeats three digits"
    elif birth_date is not None and password in _birth_forms(birth_date):
        why = "it is the holder's birth date"
    else:
        return password
    raise InvalidInput(
        f"this password is too easy to guess: {why}; choose another",
        field=field,
        reason="trivial_password",
    )


def _birth_forms(birth: date) -> set[str]:
    return {f"{birth:%y%m%d}", f"{birth:%m%d%y}", f"{birth:%d%m%y}"}


class KeyedPasswords:
    """argon2id over HMAC-SHA256(side key, password): one instance per side."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a password key needs at least 16 bytes")
        self._key = key

    def _keyed(self, password: str) -> str:
        return hmac.new(self._key, password.encode(), hashlib.sha256).hexdigest()

    def hash(self, password: str) -> str:
        return _HASHER.hash(self._keyed(password))

    def verify(self, stored: str, password: str) -> bool:
        try:
            return _HASHER.verify(stored, self._keyed(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
