"""Identifiers: citizen numbers (GB 11643), residence permits, USCC, bank cards.

Checks are delegated to python-stdnum wherever it knows the identifier; only the
Hong Kong/Macao/Taiwan residence-permit prefix rule, which stdnum does not know,
is our own (it reuses stdnum's GB 11643 check character and date parsing).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from sscard.core.errors import InvalidIdentifier

PERMIT_PREFIXES = {"810000": "hk", "820000": "macao", "830000": "taiwan"}


class IdKind(StrEnum):
    """Which document the social security number comes from (ID-1, ID-2)."""

    CITIZEN = "citizen"
    HK_PERMIT = "hk_permit"
    MACAO_PERMIT = "macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"


_PERMIT_KIND = {
    "810000": IdKind.HK_PERMIT,
    "820000": IdKind.MACAO_PERMIT,
    "830000": IdKind.TAIWAN_PERMIT,
}


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A checked social security number (= identity number)."""

    number: str
    kind: IdKind
    birth_date: date
    gender: str  # "male" | "female", from the order code's parity

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


ASCII_ID = re.compile(r"[0-9]{17}[0-9X]")
ASCII_DIGITS = re.compile(r"[0-9]+")
USCC_SHAPE = re.compile(r"[1-9A-GNY][1-9][0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}")

# Stable reason codes for clients, with the human wording used in the detail.
ID_REASONS = {
    "bad_format": "only digits, and X as the last character, are allowed",
    "bad_check_character": "bad check character (GB 11643)",
    "impossible_birth_date": "impossible birth date",
    "unknown_region_code": "unknown region code",
}


def _refuse(number: str, reason: str, field: str) -> InvalidIdentifier:
    return InvalidIdentifier(
        f"ID number {mask_id_number(number)} is invalid: {ID_REASONS[reason]}",
        field=field,
        reason=reason,
    )


@functools.lru_cache(maxsize=8192)
def _region_known(code: str) -> bool:
    """The 6-digit administrative code names a county in stdnum's register.

    Any period counts: the code records where the number was first assigned, which
    may be later than the birth year (441900 Dongguan exists since 1988).
    """
    from stdnum import numdb

    info = {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "county" in info


def parse_id_number(raw: str, *, today: date | None = None, field: str = "id_number") -> IdNumber:
    """Check an 18-character identity or residence-permit number (ID-1, ID-2).

    Refuses with the precise reason: length, format, check character, birth date,
    region code.
    """
    number = ric.compact(raw or "")
    if len(number) != 18:
        raise InvalidIdentifier(
            f"ID number must have 18 characters, got {len(number)}",
            field=field,
            reason="bad_length",
        )
    if not ASCII_ID.fullmatch(number):
        raise _refuse(number, "bad_format", field)
    if number[-1] != ric.calc_check_digit(number):
        raise _refuse(number, "bad_check_character", field)
    try:
        birth = ric.get_birth_date(number)
    except InvalidComponent:
        raise _refuse(number, "impossible_birth_date", field) from None
    if birth.year < 1900 or (today is not None and birth > today):
        raise _refuse(number, "impossible_birth_date", field)
    kind = _PERMIT_KIND.get(number[:6])
    if kind is None:
        if not _region_known(number[:6]):
            raise _refuse(number, "unknown_region_code", field)
        kind = IdKind.CITIZEN
    gender = "male" if int(number[16]) % 2 == 1 else "female"
    return IdNumber(number=number, kind=kind, birth_date=birth, gender=gender)


def parse_uscc(raw: str, *, field: str = "uscc") -> str:
    """Check a Unified Social Credit Code (GB 32100) and return it compacted.

    stdnum checks the common all-digit head; codes whose registration authority or
    category is a letter (N agriculture, Y other, A-G) get the same check character
    test here.
    """
    compact = uscc.compact(raw or "")
    if len(compact) == 18 and USCC_SHAPE.fullmatch(compact) and not compact[:8].isdigit():
        if uscc.calc_check_digit(compact[:17]) != compact[17]:
            raise InvalidIdentifier(
                f"Unified Social Credit Code {raw} has a bad check character",
                field=field,
                reason="bad_check_character",
            )
        return compact
    try:
        return uscc.validate(raw or "")
    except InvalidLength:
        raise InvalidIdentifier(
            "Unified Social Credit Code must have 18 characters", field=field, reason="bad_length"
        ) from None
    except InvalidChecksum:
        raise InvalidIdentifier(
            f"Unified Social Credit Code {raw} has a bad check character",
            field=field,
            reason="bad_check_character",
        ) from None
    except (InvalidFormat, ValidationError):
        raise InvalidIdentifier(
            f"Unified Social Credit Code {raw} has an invalid format (digits and capitals, "
            "no I, O, S, V or Z)",
            field=field,
            reason="bad_format",
        ) from None


def parse_bank_card_number(
    raw: str, *, bin_prefixes: tuple[str, ...] = (), field: str = "bank_card_number"
) -> str:
    """Check a bank card number: 16-19 digits, Luhn, and inside the bank's BIN ranges."""
    number = "".join((raw or "").split())
    if not ASCII_DIGITS.fullmatch(number) or not 16 <= len(number) <= 19:
        raise InvalidIdentifier(
            "bank card number must be 16 to 19 digits", field=field, reason="bad_format"
        )
    try:
        luhn.validate(number)
    except ValidationError:
        raise InvalidIdentifier(
            f"bank card number {mask_bank_card(number)} fails the Luhn check",
            field=field,
            reason="bad_check_digit",
        ) from None
    if bin_prefixes and not number.startswith(bin_prefixes):
        raise InvalidIdentifier(
            f"bank card number {mask_bank_card(number)} is outside the issuing bank's BIN "
            f"ranges ({', '.join(bin_prefixes)})",
            field=field,
            reason="wrong_bin",
        )
    return number


def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to ``prefix``."""
    return prefix + luhn.calc_check_digit(prefix)


def make_citizen_id(region: str, birth: date, order: int) -> str:
    """Build a valid 18-character number from region code, birth date and order code."""
    body = f"{region}{birth:%Y%m%d}{order:03d}"
    return body + ric.calc_check_digit(body + "0")


def mask_id_number(number: str) -> str:
    """``441900199001011234`` → ``4419**********1234``."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_bank_card(number: str) -> str:
    """``6222021234567890123`` → ``622202*********0123``."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(number: str) -> str:
    """``13812345678`` → ``138****5678``."""
    if len(number) < 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
