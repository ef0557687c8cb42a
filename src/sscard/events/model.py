"""Partner events, pure: event types, who receives what, payload shaping, backoff, signing input.

An event is born from an audited state change (``AuditKind.CHANGE``): its type is a
stable dotted name derived from the audit action, its scope (the card's bank, the
person's unit, the acting organization) decides which parties receive it, and each
party gets only the payload fields its kind may see (``access.disclosure``, pure like
this module). No FastAPI, no SQLAlchemy.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sscard.access.disclosure import Resource, disclose
from sscard.core.errors import DomainError, InvalidInput
from sscard.core.ids import mask_bank_card, mask_id_number
from sscard.register.model import OrgKind

# ------------------------------------------------------------------ event types

# Card moves: the audit action is ``card.<Action>``; partners get a past-tense name.
_CARD_VERBS: dict[str, str] = {
    "order": "ordered",
    "produce": "produced",
    "pickup_by_unit": "picked_up_by_unit",
    "pickup_by_holder": "picked_up",
    "hand_out": "handed_out",
    "return_undeliverable": "returned_undeliverable",
    "activate": "activated",
    "financial_activate": "financial_activated",
    "report_lost_oral": "loss_reported_oral",
    "report_lost_written": "loss_reported_written",
    "oral_report_lapse": "oral_loss_report_lapsed",
    "cancel_loss_report": "loss_report_cancelled",
    "auto_report_lost": "loss_reported_automatically",
    "replace": "replaced",
    "change": "changed",
    "destroy_unclaimed": "destroyed_unclaimed",
    "destroy_old_same_bank": "destroyed_old_same_bank",
    "supersede": "superseded",
}
# The bank's financial application: ``bank_account.<AccountAction | PasswordEvent>``.
_ACCOUNT_VERBS: dict[str, str] = {
    "open": "opened",
    "activate": "activated",
    "freeze": "frozen",
    "unfreeze": "unfrozen",
    "close": "closed",
}
_OTHER: dict[str, str] = {"medical_password.set_at_activation": "medical_password.set"}

# Changes that are internal to the service, not partner events: staff and their
# logins, sessions, second factors and machine credentials, a cardholder's own
# self-service login, key rotation, the audit log itself, reads and full views,
# the region's policy and calendar, and the webhooks themselves. An anonymous
# failed login (``auth.login_failed``) names an org code the caller chose: it must
# never reach a partner.
INTERNAL_FAMILIES = frozenset(
    {
        "auth",  # auth.login_failed, auth.locked, auth.session_opened/_ended, auth.totp_*
        "credential",  # credential.created, credential.rotated, credential.revoked
        "self",  # self.login_registered, self.password_reset
        "staff",  # staff.created, staff.password_reset, staff.unlocked, ...
        "keys",  # keys.data_rotated, keys.index_rotated
        "audit",  # the audit log's own housekeeping (sealing, verification)
        "inquiry",  # reads (AuditKind.INQUIRY) are never events anyway
        "disclosure",  # full views (AuditKind.DISCLOSURE) are never events anyway
        "policy",
        "calendar",
        "webhook",
    }
)


def event_type(action: str) -> str | None:
    """The partner event type of an audit action (``card.activate`` → ``card.activated``);
    None for internal changes, which are not events. A family that is neither a
    partner family nor internal is not an event either (fail closed)."""
    family, _, verb = action.partition(".")
    if family in INTERNAL_FAMILIES or not verb or family not in known_families():
        return None
    if family == "card":
        return f"card.{_CARD_VERBS.get(verb, verb)}"
    if family == "bank_account":
        return f"bank_account.{_ACCOUNT_VERBS.get(verb, verb)}"
    return _OTHER.get(action, action)


# Event families each kind of party may receive (its scope narrows it further).
FAMILIES: dict[OrgKind, frozenset[str] | None] = {
    OrgKind.CENTER: None,  # every family
    OrgKind.BANK: frozenset({"card", "bank_account", "application"}),
    OrgKind.OUTLET: frozenset({"card", "bank_account", "application"}),
    OrgKind.UNIT: frozenset({"card", "application", "batch", "person", "unit"}),
    OrgKind.HOSPITAL: frozenset({"card", "medical_account"}),
    OrgKind.PHARMACY: frozenset({"card", "medical_account", "person"}),
    OrgKind.SERVICE_POINT: frozenset({"card", "application", "batch", "change_request", "person"}),
    OrgKind.BUREAU_WINDOW: frozenset({"card", "medical_account"}),
    OrgKind.GRASSROOTS: frozenset({"card", "medical_account"}),
    OrgKind.HOTLINE: frozenset({"card", "medical_account"}),
    OrgKind.PHOTO_STUDIO: frozenset(),
}


@cache
def known_families() -> frozenset[str]:
    """Every family a party may name in a subscription's event types."""
    named = {f for kinds in FAMILIES.values() if kinds for f in kinds}
    return frozenset(named | {"organization", "bank", "medical_password", "change_request"})


def check_event_types(types: Iterable[str]) -> list[str]:
    """A subscription's filter: ``["*"]``, family wildcards (``card.*``) or exact types."""
    result = sorted({t.strip() for t in types})
    if not result:
        raise InvalidInput("name at least one event type, or '*' for all", field="event_types")
    families = known_families()
    for name in result:
        family, _, verb = name.partition(".")
        if name == "*":
            continue
        if family not in families or not verb or not re.fullmatch(r"\*|[a-z_]{2,40}", verb):
            raise InvalidInput(
                f"'{name}' is not an event type: use '*', '<family>.*' or a type such as "
                f"'card.activated' (families: {', '.join(sorted(families))})",
                field="event_types",
            )
    return ["*"] if "*" in result else result


def matches(types: Iterable[str], type_: str) -> bool:
    """Whether a subscription's filter takes events of ``type_``."""
    family = type_.partition(".")[0]
    accepted = {"*", type_, f"{family}.*"}
    return any(t in accepted for t in types)


# ------------------------------------------------------------------ who receives what


@dataclass(frozen=True, slots=True)
class Party:
    """An organization that receives events: its kind, id and (banks, outlets) bank."""

    kind: OrgKind
    org_id: int
    bank_code: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What an event is about, for deciding who receives it."""

    type: str
    bank_code: str | None  # the card's (or application's, account's) bank
    unit_org_id: int | None  # the person's unit
    actor_org_id: int | None  # the organization that acted


def visible_to(party: Party, scope: Scope) -> bool:
    """S-1 for events: a party receives an event only about records it may see.

    The center: all. A bank and its outlets: their own bank's cards, applications
    and accounts. A unit: its own people. Everyone (hospitals and pharmacies too):
    the acts it took part in itself, e.g. a settlement or activation at its counter
    — so a hospital learns about a card only once the card was presented to it.
    """
    families = FAMILIES.get(party.kind, frozenset())
    if families is not None and scope.type.partition(".")[0] not in families:
        return False
    if party.kind is OrgKind.CENTER:
        return True
    if scope.actor_org_id == party.org_id:
        return True
    if party.kind in (OrgKind.BANK, OrgKind.OUTLET):
        return party.bank_code is not None and scope.bank_code == party.bank_code
    if party.kind is OrgKind.UNIT:
        return scope.unit_org_id == party.org_id
    return False


def audience(scope: Scope) -> set[tuple[str, object]]:
    """The keys of every party that may receive the event (to match subscriptions
    by key instead of testing each one): see :func:`party_keys`."""
    keys: set[tuple[str, object]] = {("center", None)}
    if scope.actor_org_id is not None:
        keys.add(("org", scope.actor_org_id))
    if scope.bank_code is not None:
        keys.add(("bank", scope.bank_code))
    if scope.unit_org_id is not None:
        keys.add(("unit", scope.unit_org_id))
    return keys


def party_keys(party: Party) -> set[tuple[str, object]]:
    """The audience keys under which ``party`` may hear an event (then checked with
    :func:`visible_to`, which also applies the families)."""
    if party.kind is OrgKind.CENTER:
        return {("center", None)}
    keys: set[tuple[str, object]] = {("org", party.org_id)}
    if party.kind in (OrgKind.BANK, OrgKind.OUTLET) and party.bank_code:
        keys.add(("bank", party.bank_code))
    if party.kind is OrgKind.UNIT:
        keys.add(("unit", party.org_id))
    return keys


# ------------------------------------------------------------------ payloads
# Which fields of an event each kind of party sees is S-1's table
# (``sscard.access.disclosure``, resources ``event`` and ``event_detail``), like every
# other answer: ``partner_payload`` builds the whole payload and shapes it there.


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox event as a party reads it."""

    id: int
    seq: int | None
    type: str
    occurred_at: datetime
    subject_type: str
    subject_id: int | None
    person_id: int | None
    detail: Mapping[str, Any]


def partner_payload(kind: OrgKind, event: Event) -> dict[str, Any]:
    """The ``data`` of an event for a party of ``kind``: only the fields it may see (S-1)."""
    data: dict[str, Any] = {
        "id": webhook_id(event.id),
        "sequence": event.seq,  # the order of events; GET /events?after= cursors follow it
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "subject": {"type": event.subject_type, "id": event.subject_id},
        "detail": dict(event.detail),
        "person_id": event.person_id,
    }
    return disclose(kind, Resource.EVENT, data)


_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9Xx])")
_CARD_NUMBER = re.compile(r"(?<![0-9])[0-9]{16,19}(?![0-9])")


def scrub(value: Any) -> Any:
    """Mask anything that looks like a full ID or bank card number (defence in depth:
    audit details should never carry them, and an event must not either)."""
    if isinstance(value, str):
        value = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), value)
        return _CARD_NUMBER.sub(lambda m: mask_bank_card(m.group(0)), value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# ------------------------------------------------------------------ signing (Standard Webhooks)


def webhook_id(event_id: int) -> str:
    """The ``webhook-id`` of an event: stable across retries, replays and redeliveries."""
    return f"evt_{event_id}"


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: ``whsec_`` + base64 of 32 bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def body_of(event_type_: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a webhook: ``{"type", "timestamp", "data"}``."""
    return {"type": event_type_, "timestamp": occurred_at.isoformat(), "data": dict(data)}


def signing_input(msg_id: str, at: datetime, body: str) -> str:
    """What is signed: ``"<webhook-id>.<unix seconds>.<body>"`` (Standard Webhooks)."""
    return f"{msg_id}.{unix_seconds(at)}.{body}"


def unix_seconds(at: datetime) -> int:
    """The ``webhook-timestamp`` of an aware datetime."""
    if at.tzinfo is None:
        raise ValueError("naive datetime refused")
    return int(at.astimezone(UTC).timestamp())


# ------------------------------------------------------------------ retries


# Waits after the 1st, 2nd, ... failed attempt; then the delivery fails for good.
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
    timedelta(hours=24),
)
JITTER = 0.1  # each wait is stretched by up to 10 %, so retries of many partners spread out
MAX_ATTEMPTS = len(SCHEDULE) + 1


def retry_delay(failed_attempts: int, rand: float) -> timedelta | None:
    """The wait before the next attempt after ``failed_attempts`` failures (``rand`` in
    [0, 1) is the jitter draw); None once retries are exhausted."""
    if failed_attempts < 1:
        raise ValueError("at least one attempt has failed before a retry")
    if failed_attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[failed_attempts - 1]
    return base * (1 + JITTER * min(max(rand, 0.0), 1.0))


class Outcome(StrEnum):
    """What one attempt led to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"  # failed for good: kept as a dead letter


def outcome(status: int | None, failed_attempts: int) -> Outcome:
    """2xx delivers; 410 Gone or exhausted retries fail for good; anything else retries."""
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410 or failed_attempts >= MAX_ATTEMPTS:
        return Outcome.DEAD
    return Outcome.RETRY


# ------------------------------------------------------------------ endpoints


class UnsafeEndpoint(DomainError):
    code = "unsafe_endpoint"
    status = 422
    title = "Webhook endpoint refused"


# IPv6 prefixes that carry an IPv4 address in their low 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def unsafe_address(address: str, *, allow_loopback: bool) -> bool:
    """Whether an endpoint must not be reached at ``address``: anything but a public
    unicast address (private, shared, loopback unless allowed, link-local, multicast,
    reserved, unspecified, documentation...), also when wrapped in IPv6 (IPv4-mapped,
    6to4, NAT64). Not an IP address at all: unsafe."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return unsafe_address(str(embedded), allow_loopback=allow_loopback)
    if ip.is_loopback:
        return not allow_loopback
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_multicast
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def unsafe_host_detail(host: str) -> str:
    """Why a host name was refused, the same words whether it did not resolve or
    resolved to a private address (so the answer tells nothing about internal DNS)."""
    return (
        f"the endpoint host {host} does not resolve to public addresses only: give a host "
        "name whose DNS A/AAAA records all point to public internet addresses (names that "
        "do not resolve, and private, loopback, link-local or reserved addresses, are refused)"
    )


def check_url(url: str, *, allow_loopback: bool, addresses: Iterable[str] = ()) -> str:
    """An endpoint URL: http(s), a host, no credentials; private-network targets refused
    (loopback only when allowed, for tests and the demo). ``addresses`` are the
    host's resolved addresses, checked like a literal IP."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeEndpoint("the endpoint must be an http:// or https:// URL", field="url")
    if parts.username is not None or parts.password is not None:
        raise UnsafeEndpoint("the endpoint URL must not carry credentials", field="url")
    if parts.fragment:
        raise UnsafeEndpoint("the endpoint URL must not have a #fragment", field="url")
    if len(url) > 500:
        raise UnsafeEndpoint("the endpoint URL is longer than 500 characters", field="url")
    host = parts.hostname
    literal = [host]
    if host == "localhost" or host.endswith(".localhost"):
        literal.append("127.0.0.1")
    for candidate in literal:
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if unsafe_address(candidate, allow_loopback=allow_loopback):
            raise UnsafeEndpoint(
                f"the endpoint {host} is on a private or reserved network; partners are "
                "reached over the public network only",
                field="url",
            )
    if any(unsafe_address(a, allow_loopback=allow_loopback) for a in addresses):
        raise UnsafeEndpoint(unsafe_host_detail(host), field="url")
    return url


# ------------------------------------------------------------------ replays


class ReplayBacklog(DomainError):
    code = "replay_backlog"
    status = 409
    title = "Replay refused: too many deliveries pending"
