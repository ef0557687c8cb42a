"""Who acts: the actor of every request, agents, and which party may do what.

The table itself (operations, parties, roles, record scopes) lives in
``access.policy``; this module applies it to an actor: ``require`` (may this actor
perform the operation at all?) and ``require_scope`` (and on this record?).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sscard.access.policy import POLICY, RecordScope, Role, Scope, has_role, operations_for
from sscard.core.errors import Forbidden, InvalidInput, NotFound, PolicyRefused
from sscard.core.ids import mask_id_number, parse_id_number
from sscard.core.policy import AgentAct, Channel, RegionPolicy
from sscard.register.model import OrgKind


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


# Operation -> kinds allowed to perform it: a view of ``access.policy.POLICY`` kept for
# readers of the old table. New operations go into ``POLICY`` (one line each).
PERMISSIONS: dict[str, frozenset[OrgKind]] = {
    op: frozenset(grant.scopes) for op, grant in POLICY.items()
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
    OrgKind.CARDHOLDER: frozenset({Channel.ONLINE}),  # V-1: through an app
}

ORAL_LOSS_CHANNEL_OF: dict[OrgKind, frozenset[Channel]] = {
    OrgKind.BANK: frozenset({Channel.BANK_PHONE, Channel.ONLINE_BANKING}),
    OrgKind.OUTLET: frozenset({Channel.BANK_PHONE, Channel.ONLINE_BANKING}),
    OrgKind.HOTLINE: frozenset({Channel.PHONE_12333}),
    OrgKind.CARDHOLDER: frozenset({Channel.ONLINE_BANKING}),  # L-1: the holder, online
}


def require(actor: Actor, operation: str, record: RecordScope | None = None) -> Scope:
    """Refuse unless the table lets the actor's kind and role perform ``operation``
    (403), and, given a ``record``, unless it is in the actor's scope (404)."""
    if actor is SYSTEM:
        return Scope.ANY
    grant = POLICY.get(operation)
    scope = grant.scope_of(actor.org_kind) if grant else None
    if grant is None or scope is None:
        raise Forbidden(
            f"a {actor.org_kind.value.replace('_', ' ')} may not perform '{operation}'",
            operation=operation,
        )
    # Roles rank staff within an organization; a cardholder has none to rank.
    if actor.org_kind is not OrgKind.CARDHOLDER and not has_role(actor.role, grant.role):
        raise Forbidden(
            f"'{operation}' needs a {grant.role.value} of the organization; "
            f"{actor.org_code}'s staff member has the role '{actor.role}'",
            operation=operation,
            reason="role",
        )
    if record is not None and not in_scope(actor, scope, record):
        raise NotFound(f"no {record.what}", field=record.field)
    return scope


def require_scope(actor: Actor, operation: str, record: RecordScope) -> Scope:
    """Refuse unless the actor may perform ``operation`` on ``record`` (404 outside)."""
    return require(actor, operation, record)


def in_scope(actor: Actor, scope: Scope, record: RecordScope) -> bool:
    """Whether ``record`` lies within ``scope`` as seen by ``actor``."""
    if scope is Scope.ANY:
        return True
    if scope is Scope.PRESENTED:
        # A counter party acts only on the card or person shown to it, never by id.
        return record.presented
    if scope is Scope.OWN_BANK:
        return actor.bank_code is not None and actor.bank_code in record.bank_codes
    if scope is Scope.OWN_UNIT:
        return actor.org_id is not None and record.unit_org_id == actor.org_id
    if scope is Scope.OWN_PERSON:
        return actor.person_id is not None and record.person_id == actor.person_id
    return actor.org_id is not None and record.org_id == actor.org_id


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


@dataclass
class Permissions:
    """A view of the table for one actor (for the API's /me): operation -> scope."""

    actor: Actor
    scopes: dict[str, Scope] = field(default_factory=dict)

    @property
    def operations(self) -> list[str]:
        return sorted(self.scopes)

    @classmethod
    def of(cls, actor: Actor) -> Permissions:
        return cls(actor=actor, scopes=operations_for(actor.org_kind, actor.role))


__all__ = [
    "POLICY",
    "SYSTEM",
    "Actor",
    "Agent",
    "AgentDocument",
    "Permissions",
    "RecordScope",
    "Role",
    "Scope",
    "Service",
    "check_agent",
    "in_scope",
    "require",
    "require_authorised",
    "require_scope",
]
