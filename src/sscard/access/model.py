"""Who acts: the actor of every request, agents, and which party may do what.

This is deliberately one declarative table; the access-control issue extends it
with roles, record scopes and field disclosure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sscard.core.errors import Forbidden, InvalidInput, PolicyRefused
from sscard.core.ids import mask_id_number, parse_id_number
from sscard.core.policy import AgentAct, Channel, RegionPolicy
from sscard.register.model import OrgKind


class Role(StrEnum):
    """A staff member's role within their organization."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a request acts as: a staff member of an organization, or a cardholder.

    ``person_id`` is set for a cardholder in self-service (``org_kind`` is
    ``CARDHOLDER``, no organization). ``source`` says where the act came from (the
    client's address, ``cli``, ``sweeper``) for the audit trail.
    """

    staff_id: int | None
    org_id: int | None
    org_kind: OrgKind
    org_code: str
    bank_code: str | None = None
    name: str = "system"
    role: str = Role.OPERATOR.value
    person_id: int | None = None
    source: str = "system"


SYSTEM = Actor(staff_id=None, org_id=None, org_kind=OrgKind.CENTER, org_code="SYSTEM")


class AgentDocument(StrEnum):
    """A-5: what an agent shows."""

    POWER_OF_ATTORNEY = "power_of_attorney"
    UNIT_CERTIFICATE = "unit_certificate"
    PRINCIPAL_ID = "principal_id"


@dataclass(frozen=True, slots=True)
class Agent:
    """Someone acting for the person (A-5); stored with a masked ID number."""

    name: str
    id_number: str
    document: AgentDocument
    document_ref: str = ""

    def record(self) -> dict[str, str]:
        return {
            "name": self.name,
            "id_number": mask_id_number(self.id_number),
            "document": self.document.value,
            "document_ref": self.document_ref,
        }


def check_agent(policy: RegionPolicy, act: AgentAct, agent: Agent | None) -> Agent | None:
    """Refuse acts that policy reserves for the person in person (A-5)."""
    if agent is None:
        return None
    if not policy.agent_may(act):
        raise PolicyRefused(
            f"{policy.region.name_en} requires the cardholder in person for '{act}': "
            "an agent cannot do it (A-5)",
            field="agent",
            reason="in_person_only",
        )
    parse_id_number(agent.id_number, field="agent.id_number")
    if not agent.name.strip():
        raise InvalidInput("the agent's name is required", field="agent.name")
    needed = {
        AgentAct.PICKUP: AgentDocument.POWER_OF_ATTORNEY,
    }.get(act)
    if needed is not None and agent.document is not needed:
        raise PolicyRefused(
            f"an agent doing '{act}' must show a {needed.value.replace('_', ' ')}",
            field="agent.document",
            reason="missing_document",
        )
    return agent


# Operation → organization kinds allowed to perform it. Deny by default.
PERMISSIONS: dict[str, frozenset[OrgKind]] = {
    "register.write": frozenset({OrgKind.CENTER, OrgKind.SERVICE_POINT}),
    "register.read": frozenset(
        {OrgKind.CENTER, OrgKind.SERVICE_POINT, OrgKind.BUREAU_WINDOW, OrgKind.OUTLET, OrgKind.BANK}
    ),
    "organizations.write": frozenset({OrgKind.CENTER}),
    "organizations.authorise": frozenset({OrgKind.CENTER}),
    "units.agreement": frozenset({OrgKind.BANK, OrgKind.OUTLET, OrgKind.CENTER}),
    "applications.issue": frozenset({OrgKind.SERVICE_POINT}),
    "applications.correct": frozenset({OrgKind.SERVICE_POINT, OrgKind.UNIT}),
    "applications.return": frozenset({OrgKind.SERVICE_POINT}),
    "applications.check": frozenset({OrgKind.SERVICE_POINT}),
    "applications.read": frozenset(
        {OrgKind.CENTER, OrgKind.SERVICE_POINT, OrgKind.UNIT, OrgKind.BANK, OrgKind.OUTLET}
    ),
    "change_requests.create": frozenset({OrgKind.SERVICE_POINT}),
    "change_requests.review": frozenset({OrgKind.CENTER}),
    "cards.read": frozenset(
        {
            OrgKind.CENTER,
            OrgKind.SERVICE_POINT,
            OrgKind.BUREAU_WINDOW,
            OrgKind.BANK,
            OrgKind.OUTLET,
            OrgKind.UNIT,
            OrgKind.HOSPITAL,
            OrgKind.PHARMACY,
            OrgKind.GRASSROOTS,
            OrgKind.HOTLINE,
        }
    ),
    "cards.produce": frozenset({OrgKind.BANK}),
    "cards.pickup": frozenset({OrgKind.OUTLET}),
    "cards.hand_out": frozenset({OrgKind.UNIT}),
    "cards.return": frozenset({OrgKind.OUTLET}),
    "cards.activate": frozenset(
        {
            OrgKind.OUTLET,
            OrgKind.HOSPITAL,
            OrgKind.PHARMACY,
            OrgKind.BUREAU_WINDOW,
            OrgKind.HOTLINE,
            OrgKind.CENTER,
            OrgKind.GRASSROOTS,
        }
    ),
    "cards.loss_oral": frozenset({OrgKind.BANK, OrgKind.OUTLET, OrgKind.HOTLINE}),
    "cards.loss_written": frozenset({OrgKind.OUTLET}),
    "cards.cancel_loss": frozenset({OrgKind.OUTLET}),
    "cards.replace": frozenset({OrgKind.OUTLET}),
    "cards.change": frozenset({OrgKind.OUTLET}),
    "cards.destroy": frozenset({OrgKind.OUTLET}),
    # The issuing bank's financial application (C-1): its outlets and its host only.
    "bank.activate": frozenset({OrgKind.OUTLET}),
    "bank.password.verify": frozenset({OrgKind.OUTLET, OrgKind.BANK}),
    "bank.password.reset": frozenset({OrgKind.OUTLET}),
    "bank.password.change": frozenset({OrgKind.OUTLET, OrgKind.BANK}),
    "bank.accounts.read": frozenset({OrgKind.OUTLET, OrgKind.BANK}),
    "jobs.sweep": frozenset({OrgKind.CENTER}),
    "calendar.write": frozenset({OrgKind.CENTER}),
    "audit.read": frozenset({OrgKind.CENTER}),
    # The medical personal account (C-4) and its consumption password (P-1 to P-3).
    "accounts.settle": frozenset({OrgKind.HOSPITAL, OrgKind.PHARMACY}),
    "accounts.contributions": frozenset({OrgKind.CENTER, OrgKind.SERVICE_POINT}),
    "accounts.inquire": frozenset(
        {
            OrgKind.CENTER,
            OrgKind.SERVICE_POINT,
            OrgKind.BUREAU_WINDOW,
            OrgKind.HOTLINE,
            OrgKind.GRASSROOTS,
        }
    ),
    "accounts.check": frozenset({OrgKind.CENTER}),
    "medical_password.reset": frozenset({OrgKind.OUTLET}),
    "medical_password.change": frozenset({OrgKind.OUTLET, OrgKind.PHARMACY, OrgKind.GRASSROOTS}),
    # Cardholder self-service (S-1, Q-1): their own record, cards, account and access log.
    "self.read": frozenset({OrgKind.CARDHOLDER}),
}

# V-1: which activation channel each kind of organization works through.
ACTIVATION_CHANNEL_OF: dict[OrgKind, frozenset[Channel]] = {
    OrgKind.OUTLET: frozenset({Channel.OUTLET}),
    OrgKind.HOSPITAL: frozenset({Channel.HOSPITAL}),
    OrgKind.PHARMACY: frozenset({Channel.PHARMACY}),
    OrgKind.BUREAU_WINDOW: frozenset({Channel.BUREAU_WINDOW}),
    OrgKind.HOTLINE: frozenset({Channel.PHONE_12333}),
    OrgKind.CENTER: frozenset({Channel.ONLINE}),
    OrgKind.GRASSROOTS: frozenset({Channel.GRASSROOTS}),
}

ORAL_LOSS_CHANNEL_OF: dict[OrgKind, frozenset[Channel]] = {
    OrgKind.BANK: frozenset({Channel.BANK_PHONE, Channel.ONLINE_BANKING}),
    OrgKind.OUTLET: frozenset({Channel.BANK_PHONE, Channel.ONLINE_BANKING}),
    OrgKind.HOTLINE: frozenset({Channel.PHONE_12333}),
}


def require(actor: Actor, operation: str) -> None:
    """Refuse unless the actor's kind of organization may perform ``operation``."""
    allowed = PERMISSIONS.get(operation, frozenset())
    if actor.staff_id is None and actor is SYSTEM:
        return
    if actor.org_kind not in allowed:
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} may not perform '{operation}'",
            operation=operation,
        )


class Service(StrEnum):
    """Services the center may extend to pharmacies and grassroots platforms (002)."""

    PASSWORD_CHANGE = "password_change"  # noqa: S105 - a service, not a secret
    ACTIVATION = "activation"
    INQUIRY = "inquiry"


# Organizations that act for a service only once the center has authorised them.
NEEDS_AUTHORISATION = frozenset({OrgKind.PHARMACY, OrgKind.GRASSROOTS})


def require_authorised(actor: Actor, service: Service, granted: list[str]) -> None:
    """Pharmacies and grassroots platforms need the center's authorisation (P-3)."""
    if actor.org_kind in NEEDS_AUTHORISATION and service.value not in granted:
        raise Forbidden(
            f"{actor.org_code} is not authorised for '{service.value}': the card management "
            "center extends this service to a pharmacy or platform (P-3)",
            reason="not_authorised",
        )


def require_own_bank(actor: Actor, bank_code: str) -> None:
    """Banks and outlets act only on their own bank's cards."""
    if actor.org_kind in (OrgKind.BANK, OrgKind.OUTLET) and actor.bank_code != bank_code:
        raise Forbidden(
            f"this card belongs to bank {bank_code}; {actor.org_code} acts only on its own "
            "bank's cards"
        )


@dataclass
class Permissions:
    """A view of the table for one actor (for the API's /me)."""

    actor: Actor
    operations: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, actor: Actor) -> Permissions:
        ops = sorted(op for op, kinds in PERMISSIONS.items() if actor.org_kind in kinds)
        return cls(actor=actor, operations=ops)
