"""Six-digit card passwords (P-1 to P-3): the rules, the keyed verification value, P-2.

A card password (the medical consumption password, the bank's financial password) is
checked the way card payment systems check a PIN (the ISO 9564 / PVV pattern): the
stored value is a keyed verification value, ``HMAC-SHA256(PIN key, subject || PIN)``,
bound to the row's subject (the person, the bank account) so that it cannot be copied
to another row, under a PIN key held apart from the data (its own key file or
variable per side of the card, C-1; an HSM can stand behind the same two methods).
The guard against guessing is the attempt counter (P-2: a few wrong entries lock the
password until it is reset at an outlet), not the cost of the hash. Why, with
numbers, is in docs/architecture.md §7 ("Card passwords").

Values stored by earlier versions (argon2id over the keyed password) still verify;
the caller stores the new form after a right entry (``needs_upgrade``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sscard.core.errors import DomainError, InvalidInput

SIX_DIGITS = re.compile(r"[0-9]{6}")
FORMAT = "pv1"  # the verification value's format, part of what is stored
_LEGACY = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


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


class PinVerifier(Protocol):
    """What a side of the card needs from its PIN key: make and check stored values.

    The software key below is the default; a hardware security module would offer the
    same two operations without ever handing out the key.
    """

    def verifier(self, subject: str, pin: str) -> str: ...

    def matches(self, stored: str, subject: str, pin: str) -> bool: ...


class PinKey:
    """A side's PIN key in software: keyed verification values bound to a subject."""

    def __init__(self, key: bytes, *, version: int = 1) -> None:
        if len(key) < 16:
            raise ValueError("a PIN key needs at least 16 bytes")
        self._key = key
        self.version = version

    def _mac(self, subject: str, pin: str) -> bytes:
        message = f"{FORMAT}|{subject}|{pin}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verifier(self, subject: str, pin: str) -> str:
        """The value to store for ``pin`` on ``subject``'s row (``pv1:<version>:<mac>``)."""
        mac = base64.b64encode(self._mac(subject, pin)).decode("ascii")
        return f"{FORMAT}:{self.version}:{mac}"

    def matches(self, stored: str, subject: str, pin: str) -> bool:
        """Whether ``pin`` is the one stored for ``subject`` (constant time)."""
        if stored.startswith("$argon2"):
            return self._legacy_matches(stored, pin)
        expected = self.verifier(subject, pin)
        return hmac.compare_digest(stored.encode(), expected.encode())

    def _legacy_matches(self, stored: str, pin: str) -> bool:
        """A value stored before verification values: argon2id over HMAC(key, PIN)."""
        keyed = hmac.new(self._key, pin.encode(), hashlib.sha256).hexdigest()
        try:
            return _LEGACY.verify(stored, keyed)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_upgrade(self, stored: str) -> bool:
        """Whether a right entry should store the value again in the current form."""
        return not stored.startswith(f"{FORMAT}:{self.version}:")


# ---------------------------------------------------------------- P-2, one rule for both sides


@dataclass(frozen=True, slots=True)
class PinEntry:
    """The outcome of one counted entry of a card password."""

    verified: bool
    failed_attempts: int
    locked: bool
    attempts_left: int


def enter_pin(*, right: bool, failed_attempts: int, max_wrong: int) -> PinEntry:
    """P-2: a right entry resets the count; ``max_wrong`` consecutive wrong ones lock."""
    if right:
        return PinEntry(True, 0, False, max_wrong)
    failed = failed_attempts + 1
    return PinEntry(False, failed, failed >= max_wrong, max(max_wrong - failed, 0))


class WrongPassword(InvalidInput):
    """A wrong card password; how many more wrong entries lock it (P-2)."""

    code = "wrong_password"
    title = "Wrong password"

    def __init__(self, entry: PinEntry, *, what: str, field: str) -> None:
        super().__init__(
            f"the {what} is wrong; {entry.attempts_left} more wrong entries lock it (P-2)",
            field=field,
            attempts_left=entry.attempts_left,
        )


class PasswordLocked(DomainError):
    """A card password locked by wrong entries, until reset at an outlet (P-2)."""

    code = "password_locked"
    status = 423
    title = "Password locked"

    def __init__(self, *, what: str, field: str, just_now: bool = False) -> None:
        when = "is now locked after too many wrong entries" if just_now else "is locked"
        super().__init__(
            f"the {what} {when}: the holder unlocks and resets it at an outlet of the "
            "issuing bank with ID and card (P-2)",
            field=field,
        )
