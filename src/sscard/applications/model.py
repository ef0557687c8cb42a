"""Application rules: states, photo sources, bank forcing (B-2, B-3), form numbers."""

from __future__ import annotations

import re
from enum import StrEnum

from sscard.core.errors import IllegalTransition, PolicyRefused
from sscard.core.policy import RegionPolicy, UnitKind
from sscard.register.model import MedicalScheme


class ApplicationKind(StrEnum):
    UNIT_BUNDLED = "unit_bundled"
    INDIVIDUAL = "individual"
    REPLACEMENT = "replacement"
    CHANGE = "change"


class ApplicationState(StrEnum):
    ISSUED = "issued"  # form printed and handed out
    RETURNED = "returned"  # form back at the service point
    ACCEPTED = "accepted"  # checked; card ordered
    REJECTED = "rejected"  # checked and refused (reason kept); a new form may follow
    CANCELLED = "cancelled"


OPEN_STATES = (ApplicationState.ISSUED, ApplicationState.RETURNED)


class BatchState(StrEnum):
    ISSUED = "issued"  # forms collected by the unit administrator (A-2 step 2)
    RETURNED = "returned"  # forms returned (step 5)
    CHECKED = "checked"  # checked, summary given (step 6)


class PhotoSource(StrEnum):
    """C-3: the ID-card photo with authorisation, or a studio photo receipt."""

    ID_CARD_AUTHORISATION = "id_card_authorisation"
    STUDIO_RECEIPT = "studio_receipt"


APPLICATION_MOVES: dict[tuple[ApplicationState, str], ApplicationState] = {
    (ApplicationState.ISSUED, "correct"): ApplicationState.ISSUED,
    (ApplicationState.ISSUED, "return"): ApplicationState.RETURNED,
    (ApplicationState.ISSUED, "cancel"): ApplicationState.CANCELLED,
    (ApplicationState.RETURNED, "accept"): ApplicationState.ACCEPTED,
    (ApplicationState.RETURNED, "reject"): ApplicationState.REJECTED,
}


def application_move(state: ApplicationState, action: str) -> ApplicationState:
    target = APPLICATION_MOVES.get((state, action))
    if target is None:
        allowed = [a for (s, a) in APPLICATION_MOVES if s == state]
        raise IllegalTransition("application", state.value, action, allowed)
    return target


def forced_bank(
    policy: RegionPolicy, *, unit_kind: UnitKind | None, scheme: MedicalScheme | None
) -> str | None:
    """B-2, B-3: the bank policy forces for this unit kind or medical scheme, if any."""
    if unit_kind is not None and unit_kind in policy.bank_forcing:
        return policy.bank_forcing[unit_kind]
    if scheme is MedicalScheme.COMPREHENSIVE:
        return policy.bank_forcing.get(UnitKind.COMPREHENSIVE_MEDICAL)
    return None


def choose_bank(
    policy: RegionPolicy,
    chosen: str,
    *,
    unit_kind: UnitKind | None,
    scheme: MedicalScheme | None,
) -> str:
    """Check a bank choice against the region's list and the forcing rule."""
    if policy.bank(chosen) is None:
        raise PolicyRefused(
            f"'{chosen}' is not an issuing bank of {policy.region.name_en}; choose one of "
            + ", ".join(b.code for b in policy.banks),
            field="bank_code",
        )
    forced = forced_bank(policy, unit_kind=unit_kind, scheme=scheme)
    if forced is not None and chosen != forced:
        who = (
            f"units of kind '{unit_kind}'"
            if unit_kind in policy.bank_forcing
            else ("persons in comprehensive basic medical insurance")
        )
        raise PolicyRefused(
            f"{who} keep their original issuing bank: choose '{forced}', not '{chosen}' (B-2/B-3)",
            field="bank_code",
            forced_bank=forced,
        )
    return chosen


def form_number(region_code: str, year: int, sequence: int) -> str:
    """A-4: a unique, barcode-printable form number with a mod-97 check (ISO 7064)."""
    body = f"{region_code}{year % 100:02d}{sequence:010d}"
    check = 98 - (int(body) * 100) % 97
    return f"SB{body}{check:02d}"


def form_number_valid(number: str) -> bool:
    if not re.fullmatch(r"SB[0-9]{20}", number):
        return False
    return int(number[2:]) % 97 == 1
