"""Register vocabulary: organization kinds, person status, photo sources."""

from __future__ import annotations

from enum import StrEnum


class OrgKind(StrEnum):
    """Every party in DOMAIN.md's table is an organization of one of these kinds."""

    CENTER = "center"  # card management center
    SERVICE_POINT = "service_point"
    BUREAU_WINDOW = "bureau_window"
    BANK = "bank"  # issuing bank (head office of the region)
    OUTLET = "outlet"  # a bank outlet; parent is its bank
    HOSPITAL = "hospital"
    PHARMACY = "pharmacy"
    GRASSROOTS = "grassroots"
    PHOTO_STUDIO = "photo_studio"
    UNIT = "unit"
    HOTLINE = "hotline"  # 12333
    # The insured person acting for themself in self-service. A party of the access
    # table, never a row of ``organizations``.
    CARDHOLDER = "cardholder"


# Kinds an organization row may have (every kind but the cardholder).
ORGANIZATION_KINDS = frozenset(k for k in OrgKind if k is not OrgKind.CARDHOLDER)


class PersonStatus(StrEnum):
    """ID-3 personal status."""

    EMPLOYED = "employed"
    UNEMPLOYED = "unemployed"
    RETIRED = "retired"


class MedicalScheme(StrEnum):
    """Medical insurance scheme, for the bank-forcing rule for flexible employees (B-3)."""

    EMPLOYEE = "employee"
    COMPREHENSIVE = "comprehensive"


class OldCardState(StrEnum):
    """The old medical insurance card (V-4)."""

    NONE = "none"
    NORMAL = "normal"
    RESTRICTED = "restricted"
    CLOSED = "closed"


class RecordKind(StrEnum):
    """ID-3: what else a person's record can hold."""

    QUALIFICATION = "qualification"
    WORK_HISTORY = "work_history"
    WORK_INJURY = "work_injury"
    OCCUPATIONAL_DISEASE = "occupational_disease"
    PENSION = "pension"
