"""Who may do what (S-1): one declarative table of operations, parties, roles and scopes.

Every operation names the kinds of party that may perform it, the least role a staff
member needs within their organization, and for each kind *on whose records* it acts
(its scope). Deny by default: an operation missing from the table, or a kind missing
from an operation, is refused for everyone; only the ``SYSTEM`` actor bypasses it.

A record out of the actor's scope answers 404 ``not_found``, exactly as a record that
does not exist, so that nobody learns that a card or person exists outside their scope.
A kind or role that may not perform the operation at all answers 403 ``forbidden``.

Pure: imports neither FastAPI nor SQLAlchemy; ``access.scoping`` turns scopes into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from enum import StrEnum
from types import MappingProxyType

from sscard.register.model import ORGANIZATION_KINDS, OrgKind


class Role(StrEnum):
    """A staff member's role within their organization, least first."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"


RANK: Mapping[str, int] = MappingProxyType(
    {Role.OPERATOR.value: 0, Role.SUPERVISOR.value: 1, Role.ADMINISTRATOR.value: 2}
)


class Scope(StrEnum):
    """On whose records a party acts."""

    ANY = "any"  # every record of the region: the center and the agency's own offices
    OWN_BANK = "own_bank"  # a bank or its outlet: cards, accounts, forms of its own bank
    OWN_UNIT = "own_unit"  # a unit administrator: its own unit's people, forms, batches, cards
    OWN_PERSON = "own_person"  # a cardholder in self-service: their own record only
    OWN_ORG = "own_org"  # the actor's own organization (its staff, credentials, settlements)
    # A card presented at the counter (hospital, pharmacy, platform, 12333): the one
    # record the request names by card or ID number; never a list.
    PRESENTED = "presented"


@dataclass(frozen=True, slots=True)
class Grant:
    """Who may perform one operation: a scope per kind, and the least role needed."""

    scopes: Mapping[OrgKind, Scope]
    role: Role = Role.OPERATOR
    why: str = ""

    def scope_of(self, kind: OrgKind) -> Scope | None:
        return self.scopes.get(kind)


@dataclass(frozen=True, slots=True)
class RecordScope:
    """Whose a record is: what ``require_scope`` compares with the actor.

    ``what`` names the record as a missing one would be named ("card with id 7"), so an
    out-of-scope record answers exactly like an unknown one.
    """

    what: str
    field: str | None = None
    person_id: int | None = None
    unit_org_id: int | None = None
    bank_codes: frozenset[str] = _field(default_factory=frozenset)
    org_id: int | None = None
    # Named by the number the party was shown at the counter (the card number printed on
    # the card, the holder's ID number), not by an internal id: what PRESENTED needs.
    presented: bool = False


def _g(role: Role = Role.OPERATOR, why: str = "", **scopes: Scope) -> Grant:
    return Grant(
        scopes=MappingProxyType({OrgKind(k): v for k, v in scopes.items()}), role=role, why=why
    )


ANY, BANK, UNIT, PERSON, ORG, PRESENTED = (
    Scope.ANY,
    Scope.OWN_BANK,
    Scope.OWN_UNIT,
    Scope.OWN_PERSON,
    Scope.OWN_ORG,
    Scope.PRESENTED,
)

# Staff of every organization on their own organization (e.g. its staff list).
_EVERY_ORG = {k.value: ORG for k in ORGANIZATION_KINDS} | {OrgKind.CENTER.value: ANY}

# Operation -> Grant. Deny by default. Keep one line per operation where it fits.
POLICY: Mapping[str, Grant] = MappingProxyType(
    {
        # ---------------------------------------------------------------- register
        "register.write": _g(center=ANY, service_point=ANY),
        "organizations.read": _g(
            center=ANY, service_point=ANY, bureau_window=ANY, bank=ANY, outlet=ANY
        ),
        "organizations.write": _g(
            Role.SUPERVISOR,
            "adding an outlet, hospital or pharmacy makes a new party that may act on cards",
            center=ANY,
        ),
        "organizations.authorise": _g(
            Role.SUPERVISOR,
            "P-3 extends password changes and activation to a pharmacy or platform",
            center=ANY,
        ),
        "units.read": _g(
            center=ANY, service_point=ANY, bureau_window=ANY, bank=BANK, outlet=BANK, unit=ORG
        ),
        # Any unit may sign with any bank; a bank signs in its own name (the service checks).
        "units.agreement": _g(center=ANY, bank=ANY, outlet=ANY),
        "persons.read": _g(
            center=ANY,
            service_point=ANY,
            bureau_window=ANY,
            bank=BANK,
            outlet=BANK,
            unit=UNIT,
            cardholder=PERSON,
        ),
        # ID-3's other records (work injuries, diseases): the agency and the person only.
        "person_records.read": _g(
            center=ANY, service_point=ANY, bureau_window=ANY, cardholder=PERSON
        ),
        # -------------------------------------------------------------- applications
        "applications.issue": _g(service_point=ANY),
        "applications.correct": _g(service_point=ANY, unit=UNIT),
        "applications.return": _g(service_point=ANY),
        "applications.check": _g(service_point=ANY),
        "applications.read": _g(
            center=ANY, service_point=ANY, unit=UNIT, bank=BANK, outlet=BANK, cardholder=PERSON
        ),
        # A unit's bundle of forms: never a cardholder's own record.
        "batches.read": _g(center=ANY, service_point=ANY, unit=UNIT, bank=BANK, outlet=BANK),
        "change_requests.create": _g(service_point=ANY),
        "change_requests.read": _g(center=ANY, service_point=ANY, cardholder=PERSON),
        "change_requests.review": _g(
            Role.SUPERVISOR,
            "ID-4: approving a new name or ID number rewrites who a person is (four eyes)",
            center=ANY,
        ),
        # --------------------------------------------------------------------- cards
        # A card and its history by id, and lists of cards.
        "cards.read": _g(
            center=ANY,
            service_point=ANY,
            bureau_window=ANY,
            bank=BANK,
            outlet=BANK,
            unit=UNIT,
            cardholder=PERSON,
        ),
        # Is the card in hand usable here? Named by the number printed on it, so counter
        # parties read only cards presented to them, never one by id or a list.
        "cards.check": _g(
            center=ANY,
            service_point=ANY,
            bureau_window=ANY,
            bank=BANK,
            outlet=BANK,
            unit=UNIT,
            hospital=PRESENTED,
            pharmacy=PRESENTED,
            grassroots=PRESENTED,
            hotline=PRESENTED,
            cardholder=PERSON,
        ),
        "cards.produce": _g(bank=BANK),
        "cards.pickup": _g(outlet=BANK),
        "cards.hand_out": _g(unit=UNIT),
        "cards.return": _g(outlet=BANK),
        "cards.activate": _g(
            outlet=BANK,
            hospital=PRESENTED,
            pharmacy=PRESENTED,
            bureau_window=ANY,
            hotline=PRESENTED,
            center=ANY,
            grassroots=PRESENTED,
            cardholder=PERSON,  # V-1: online, through an app
        ),
        "cards.loss_oral": _g(
            bank=BANK,
            outlet=BANK,
            hotline=PRESENTED,
            cardholder=PERSON,  # L-1: online banking
        ),
        "cards.loss_written": _g(outlet=BANK),
        "cards.cancel_loss": _g(outlet=BANK),
        "cards.replace": _g(outlet=BANK),
        "cards.change": _g(outlet=BANK),
        "cards.destroy": _g(
            Role.SUPERVISOR, "D-2, R-4: destroying a card cannot be undone", outlet=BANK
        ),
        # The issuing bank's financial application (C-1): its outlets and its host only.
        "bank.activate": _g(outlet=BANK),
        "bank.password.verify": _g(outlet=BANK, bank=BANK),
        "bank.password.reset": _g(outlet=BANK),
        "bank.password.change": _g(outlet=BANK, bank=BANK),
        "bank.accounts.read": _g(outlet=BANK, bank=BANK),
        # -------------------------------------- the medical personal account (C-4, P-1..P-3)
        "accounts.settle": _g(hospital=PRESENTED, pharmacy=PRESENTED),
        "accounts.contributions": _g(
            Role.SUPERVISOR,
            "a contribution import credits money to many accounts at once",
            center=ANY,
            service_point=ANY,
        ),
        "accounts.inquire": _g(
            center=ANY,
            service_point=ANY,
            bureau_window=ANY,
            hotline=PRESENTED,
            grassroots=PRESENTED,
            cardholder=PERSON,
        ),
        "accounts.check": _g(center=ANY),
        "medical_password.reset": _g(outlet=BANK),
        "medical_password.change": _g(outlet=BANK, pharmacy=PRESENTED, grassroots=PRESENTED),
        # ------------------------------------------------------------------ operations
        "jobs.sweep": _g(center=ANY),
        "calendar.read": _g(Role.OPERATOR, "", **{k.value: ANY for k in ORGANIZATION_KINDS}),
        "calendar.write": _g(
            Role.SUPERVISOR, "a holiday schedule moves every working-day deadline", center=ANY
        ),
        "audit.read": _g(
            Role.SUPERVISOR, "the audit trail shows every party's acts on every card", center=ANY
        ),
        # Staff and partner credentials of an organization (routes under /staff, /credentials).
        "staff.manage": _g(
            Role.ADMINISTRATOR, "who may act in the organization's name", **_EVERY_ORG
        ),
        "credentials.manage": _g(
            Role.ADMINISTRATOR,
            "a credential lets a system act in the organization's name",
            **_EVERY_ORG,
        ),
        # Partner events (routes under /webhooks and /events): an organization subscribes
        # to and replays its own visible events (events.model decides their scope and
        # fields); the center also reads every dead letter. Operators may subscribe: a
        # partner system's own credential (operator or supervisor) registers its
        # endpoint, and a webhook carries nothing the organization may not read anyway.
        "webhooks.manage": _g(Role.OPERATOR, "", **_EVERY_ORG),
        "events.read": _g(Role.OPERATOR, "", **_EVERY_ORG),
        "webhooks.failures.all": _g(center=ANY),
        # ------------------------------------------------- the cardholder's self-service
        "self.read": _g(cardholder=PERSON),
    }
)


def grant_of(operation: str) -> Grant | None:
    """The table's entry for ``operation`` (None: nobody may perform it)."""
    return POLICY.get(operation)


def has_role(role: str, least: Role) -> bool:
    """Whether ``role`` is at least ``least`` (an unknown role is below every role)."""
    return RANK.get(role, -1) >= RANK[least.value]


def operations_for(kind: OrgKind, role: str) -> dict[str, Scope]:
    """Every operation this kind and role may perform, with its scope (for ``GET /me``)."""
    out: dict[str, Scope] = {}
    for op, grant in sorted(POLICY.items()):
        scope = grant.scope_of(kind)
        ranked = kind is OrgKind.CARDHOLDER or has_role(role, grant.role)
        if scope is not None and ranked:
            out[op] = scope
    return out
