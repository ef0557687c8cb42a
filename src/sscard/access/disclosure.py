"""S-1: which fields of which resource each party sees, and which it may see in full.

A declarative table, pure (no FastAPI, no SQLAlchemy): for every resource the API,
the webhooks or an export hands out, the fields each ``OrgKind`` sees. ID numbers,
bank card numbers and phone numbers are masked wherever they are visible; ``FULL``
says who may ask to see one in full (an explicit, audited request; never by default).

``disclose(kind, resource, data)`` keeps only the visible keys, masks the masked
ones, and recurses into nested resources (``NESTED``). A kind missing from a
resource's row sees nothing of it. ``EVERY_KEY`` names the few open-ended resources
a kind sees whole (the center: a partner event's detail); ``ANONYMOUS`` what a caller
without an actor yet (a login) is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from sscard.core.ids import mask_bank_card, mask_id_number, mask_phone
from sscard.register.model import OrgKind

K = OrgKind


class Resource(StrEnum):
    """Everything a party can be shown."""

    PERSON = "person"
    PERSON_RECORD = "person_record"  # ID-3: work history, qualifications, injuries ...
    CHANGE_REQUEST = "change_request"
    ORGANIZATION = "organization"
    UNIT = "unit"
    CARD = "card"
    CARD_CHECK = "card_check"
    TRANSITION = "transition"
    AGENT = "agent"  # who acted for the holder (inside a transition)
    FEE = "fee"
    APPLICATION = "application"
    BATCH = "batch"
    SUMMARY = "summary"  # the registration summary of a batch
    SUMMARY_LINE = "summary_line"
    STATEMENT = "statement"  # balance, entries, payment records
    ENTRY = "entry"
    CONTRIBUTION = "contribution"
    RECEIPT = "receipt"  # a settlement or refund receipt
    DONE = "done"
    BANK_ACCOUNT = "bank_account"
    BANK_EVENT = "bank_event"
    PASSWORD_CHECK = "password_check"  # noqa: S105 - a resource, not a secret
    AUDIT_ENTRY = "audit_entry"
    ACCESS_LOG_ENTRY = "access_log_entry"  # GET /self/access-log
    FULL_VIEW = "full_view"  # the answer to an audited request for a full value
    PROBLEM = "problem"  # RFC 9457 problem details
    ME = "me"
    # Logging in (api/routes/auth.py): the caller's own session and logins, and the
    # staff and partner credentials of the caller's own organization.
    SESSION = "session"
    SELF_REGISTRATION = "self_registration"
    TOTP_ENROLMENT = "totp_enrolment"
    TOTP = "totp"
    STAFF = "staff"
    CREDENTIAL = "credential"
    # The audit trail (GET /audit/...): the center's.
    VERIFICATION = "verification"
    CHAIN_BREAK = "chain_break"
    # Partner events (webhooks, GET /events): the subscriber's own.
    WEBHOOK = "webhook"
    DEAD_LETTER = "dead_letter"
    REDELIVERY = "redelivery"
    ATTEMPT = "attempt"
    REPLAY = "replay"
    EVENT = "event"  # the ``data`` of a partner event, as its webhook carries it
    EVENT_DETAIL = "event_detail"  # what changed (the audited change's scrubbed detail)
    # Envelopes: only nested resources and paging, visible to whoever gets the envelope.
    CARD_MOVED = "card_moved"
    REISSUE = "reissue"
    BATCH_ISSUED = "batch_issued"
    ACCOUNT_CHANGED = "account_changed"
    ACCOUNT_DETAIL = "account_detail"
    PERSON_PAGE = "person_page"
    CARD_PAGE = "card_page"
    ORGANIZATION_PAGE = "organization_page"
    ACCESS_LOG_PAGE = "access_log_page"
    SELF_ACCOUNT = "self_account"  # GET /self/medical-account
    STAFF_PAGE = "staff_page"
    CREDENTIAL_PAGE = "credential_page"
    AUDIT_PAGE = "audit_page"
    WEBHOOK_LIST = "webhook_list"
    DEAD_LETTER_PAGE = "dead_letter_page"
    ATTEMPT_PAGE = "attempt_page"
    EVENT_PAGE = "event_page"
    EVENT_BODY = "event_body"  # a webhook's body: type, timestamp and the event's data
    # Operational answers that hold no personal data (sweeps, calendar, clock).
    OPERATIONS = "operations"


R = Resource
EVERY_KIND = frozenset(OrgKind)
ORGANIZATIONS = frozenset(k for k in OrgKind if k is not K.CARDHOLDER)
BANK_SIDE = frozenset({K.BANK, K.OUTLET})


def _f(names: str) -> frozenset[str]:
    return frozenset(names.split())


def _rows(*rows: tuple[Iterable[OrgKind], frozenset[str]]) -> dict[OrgKind, frozenset[str]]:
    table: dict[OrgKind, frozenset[str]] = {}
    for kinds, fields in rows:
        for kind in kinds:
            table[kind] = table.get(kind, frozenset()) | fields
    return table


# ---------------------------------------------------------------- persons

_PERSON_ALL = _f(
    "id id_number id_kind name gender birth_date status phone unit_org_id medical_scheme "
    "insured_since old_medical_card_state"
)
_WHO = _f("id name id_number id_kind")  # who this is: name and the masked ID number
_CARD_ALL = _f(
    "id person_id state allowed_actions bank_code card_number serial bank_card_number "
    "outlet_org_id unit_org_id ready_on ready_provisional valid_until handout_due received_at "
    "activated_at activation_channel financial_activated_at loss_reported_at "
    "oral_loss_lapses_at written_report_no replaced_by_card_id"
)
_CARD_STATE = _f("id person_id state allowed_actions valid_until activated_at")
# The social side's view of a card: everything but the financial application (C-1)
# and the chip serial, which only the bank, its outlets and the center handle (V-1).
_CARD_SOCIAL = _CARD_ALL - _f("serial bank_card_number financial_activated_at")
_TRANSITION_ALL = _f(
    "id card_id from_state to_state action channel reason_code place_org_id actor_staff_id "
    "agent occurred_at"
)
_TRANSITION_MOVE = _f("id card_id from_state to_state action channel occurred_at")
_APPLICATION_ALL = _f(
    "id form_number person_id batch_id kind state bank_code photo_source photo_receipt_no "
    "form_data corrections return_due issued_at returned_at decided_at reject_reason"
)
_APPLICATION_CORE = _f("id form_number person_id batch_id kind state bank_code issued_at")
_BANK_ACCOUNT_ALL = _f(
    "id bank_code bank_card_number holder_id_number card_id state allowed_actions password_set "
    "password_locked failed_attempts opened_at activated_at frozen_at closed_at"
)
_BANK_ACCOUNT_STATE = _f("id bank_code card_id state opened_at activated_at frozen_at closed_at")
# The problem keys everyone gets, the unauthenticated caller of a login too: what a
# refusal needs to say what to do next. ``unlocks_at`` (a locked login opens again),
# ``tries_left``/``attempts_left`` (wrong passwords before the lock) and
# ``forced_bank`` (the bank the region's policy forces, B-2/B-3) tell the caller
# about their own attempt or about policy, never about someone else's record.
_PROBLEM = _f(
    "type title status code detail field errors reason operation attempts_left tries_left "
    "unlocks_at ready_on forced_bank"
)
# What every receiving party is told of a partner event's change: which card moved
# from which state to which, and why.
_EVENT_EVERYONE = _f("from to reason card_id card_number kind")
# Who sees a medical account's balance anywhere (receipts, Q-1 statements).
_BALANCE_SEEN_BY = frozenset(
    {K.HOSPITAL, K.PHARMACY, K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.GRASSROOTS}
    | {K.HOTLINE, K.CARDHOLDER}
)

VISIBLE: dict[Resource, dict[OrgKind, frozenset[str]]] = {
    R.PERSON: _rows(
        # The register's owners and the insured person see the whole record.
        ({K.CENTER, K.SERVICE_POINT, K.CARDHOLDER}, _PERSON_ALL),
        # Activation and Q-1 inquiry at a window, a platform or 12333 need the record
        # but not the unit (it says where someone works) nor the phone, except 12333,
        # which calls back.
        (
            {K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE},
            _WHO | _f("gender birth_date status medical_scheme insured_since"),
        ),
        ({K.HOTLINE}, _f("phone old_medical_card_state")),
        ({K.BUREAU_WINDOW, K.GRASSROOTS}, _f("old_medical_card_state")),
        # A bank knows its customer (name, ID, birth, phone: an outlet contacts the
        # holder of an undeliverable card, D-1), never the insurance side: status,
        # unit, scheme, old medical card.
        (BANK_SIDE, _WHO | _f("gender birth_date phone")),
        # A unit sees who its people are and their status; their phone is private.
        ({K.UNIT}, _WHO | _f("status unit_org_id")),
        # A hospital registers the patient: identity, sex, age, scheme.
        ({K.HOSPITAL}, _WHO | _f("gender birth_date medical_scheme insured_since")),
        # The issue's example: a pharmacy sees the name and the masked ID number, and
        # whether an old medical card must be read first (V-1); nothing else.
        ({K.PHARMACY}, _WHO | _f("old_medical_card_state")),
        # A photo studio takes the photo and issues a receipt: a name is enough.
        ({K.PHOTO_STUDIO}, _f("id name")),
    ),
    # ID-3's further records (work history, qualifications, injuries, occupational
    # diseases, pension) stay with the social insurance agency and the person.
    R.PERSON_RECORD: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.CARDHOLDER},
            _f("id person_id kind title started_on ended_on detail"),
        ),
    ),
    R.CHANGE_REQUEST: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.CARDHOLDER},
            _f(
                "id person_id field_name old_value new_value document state created_at "
                "decided_at decline_reason card_change_done"
            ),
        ),
        # ID-4: the bank makes the changed card; it needs the new value, not the old
        # one nor the supporting document.
        (BANK_SIDE, _f("id person_id field_name new_value state decided_at card_change_done")),
    ),
    R.ORGANIZATION: _rows(
        # Which services the center extended to whom (P-3) is the center's business.
        ({K.CENTER, K.SERVICE_POINT}, _f("id kind code name parent_id bank_code authorisations")),
        (ORGANIZATIONS - {K.CENTER, K.SERVICE_POINT}, _f("id kind code name parent_id bank_code")),
        ({K.CARDHOLDER}, _f("id kind code name")),
    ),
    R.UNIT: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.UNIT},
            _f("id code name uscc unit_kind agreement_bank_code agreement_signed_at"),
        ),
        (ORGANIZATIONS - {K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.UNIT}, _f("id code name")),
    ),
    R.CARD: _rows(
        # The center and the bank side see the whole card; the holder too (it is theirs).
        ({K.CENTER, K.BANK, K.OUTLET, K.CARDHOLDER}, _CARD_ALL),
        ({K.SERVICE_POINT}, _CARD_SOCIAL),
        # Window, platform and 12333: activation (V-1) and loss (L-1) by card number.
        (
            {K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE},
            _CARD_STATE
            | _f(
                "bank_code card_number ready_on received_at activation_channel "
                "loss_reported_at oral_loss_lapses_at replaced_by_card_id"
            ),
        ),
        # A unit collects and hands out cards (A-2 steps 7, 8) and reminds to activate;
        # losses are the holder's business.
        (
            {K.UNIT},
            _CARD_STATE
            | _f(
                "bank_code card_number outlet_org_id unit_org_id ready_on handout_due received_at"
            ),
        ),
        # Hospitals and pharmacies read the card number off the chip; they see whether
        # the card is usable, never the bank card number nor the serial.
        ({K.HOSPITAL, K.PHARMACY}, _CARD_STATE),
    ),
    # Is the card usable here? Every party that may check a card (cards.check), the
    # holder on their own card too (whether their card works, and why not).
    R.CARD_CHECK: _rows(
        ((ORGANIZATIONS - {K.PHOTO_STUDIO}) | {K.CARDHOLDER}, _f("card_id state usable reason"))
    ),
    R.TRANSITION: _rows(
        ({K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET}, _TRANSITION_ALL),
        # Staff ids of another organization are internal to it.
        (
            {K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE, K.CARDHOLDER},
            _TRANSITION_ALL - {"actor_staff_id"},
        ),
        ({K.UNIT}, _TRANSITION_MOVE | {"place_org_id"}),
        ({K.HOSPITAL, K.PHARMACY}, _TRANSITION_MOVE),
    ),
    R.AGENT: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.BUREAU_WINDOW, K.GRASSROOTS}
            | {K.HOTLINE, K.CARDHOLDER},
            _f("name id_number document document_ref"),
        ),
    ),
    R.FEE: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.CARDHOLDER},
            _f("id basis amount_fen voucher_no paid_at"),
        ),
    ),
    R.APPLICATION: _rows(
        ({K.CENTER, K.SERVICE_POINT, K.UNIT, K.CARDHOLDER}, _APPLICATION_ALL),
        # The bank produces the card of an accepted form: the form, not its contents.
        (BANK_SIDE, _APPLICATION_CORE | {"decided_at"}),
        ({K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE}, _APPLICATION_CORE | {"return_due"}),
    ),
    R.BATCH: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.UNIT, K.BANK, K.OUTLET},
            _f(
                "id unit_org_id stage state bank_code issued_at return_due returned_at "
                "checked_at overdue_at"
            ),
        ),
    ),
    R.SUMMARY: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.UNIT, K.BANK, K.OUTLET},
            _f("batch unit_code unit_name accepted rejected cards_ready_on lines"),
        ),
    ),
    R.SUMMARY_LINE: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.UNIT},
            _f("application_id form_number name id_number state reject_reason"),
        ),
        # The bank prepares the bundle's cards: whose, not why a form was rejected.
        (BANK_SIDE, _f("application_id form_number name id_number state")),
    ),
    # the insured and the agency's inquiry points. Not the bank (C-1 keeps the
    # two applications apart), not hospitals or pharmacies (they get a receipt).
    R.STATEMENT: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE, K.CARDHOLDER},
            _f("person_id balance_fen old_card_balance_fen entries next contributions"),
        ),
    ),
    R.ENTRY: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE, K.CARDHOLDER},
            _f("id transaction_id kind amount_fen at org_id"),
        ),
    ),
    R.CONTRIBUTION: _rows(
        (
            {K.CENTER, K.SERVICE_POINT, K.BUREAU_WINDOW, K.GRASSROOTS, K.HOTLINE, K.CARDHOLDER},
            _f("month amount_fen unit_org_id"),
        ),
    ),
    # The pharmacy's and hospital's receipt carries the medical balance (the issue's
    # example) and the card's state after the payment.
    R.RECEIPT: _rows(
        (
            {K.HOSPITAL, K.PHARMACY, K.CENTER, K.CARDHOLDER},
            _f(
                "transaction_id kind amount_fen balance_fen card_id card_state activated "
                "replayed at"
            ),
        ),
    ),
    R.DONE: _rows((EVERY_KIND, _f("person_id result"))),
    R.BANK_ACCOUNT: _rows(
        ({K.BANK, K.OUTLET, K.CARDHOLDER}, _BANK_ACCOUNT_ALL),
        # The center learns of the financial application only what V-1 and R-2 need:
        # its state, never the numbers or the password's state.
        ({K.CENTER}, _BANK_ACCOUNT_STATE),
    ),
    R.BANK_EVENT: _rows(
        # The bank's own record of its acts (C-1): who, from where, through which channel.
        (
            BANK_SIDE,
            _f(
                "id bank_code from_state to_state action actor_staff_id actor_org_id source "
                "channel occurred_at detail"
            ),
        ),
        ({K.CENTER, K.CARDHOLDER}, _f("id from_state to_state action channel occurred_at")),
    ),
    R.PASSWORD_CHECK: _rows((BANK_SIDE, _f("verified locked attempts_left account"))),
    # The audit trail is the center's (audit.read); its details hold counts and masked
    # numbers only.
    R.AUDIT_ENTRY: _rows(
        (
            {K.CENTER},
            _f(
                "id occurred_at kind actor_staff_id actor_org_id actor_person_id source channel "
                "action subject_type subject_id person_id detail chain_seq entry_hash"
            ),
        ),
    ),
    R.ACCESS_LOG_ENTRY: _rows(
        (
            {K.CARDHOLDER, K.CENTER},
            _f("id at kind organization_name organization_kind action what subject_type"),
        ),
    ),
    R.FULL_VIEW: _rows(
        (EVERY_KIND, _f("subject_type subject_id person_id field value reason disclosed_at"))
    ),
    # Problem details carry only these keys: any other extra a refusal might gain
    # later is dropped, so an error can never carry a field nobody listed. A refused
    # move names the card's (or account's) state only to those who see it, and an
    # insufficient balance its amount only to those who see balances.
    R.PROBLEM: _rows(
        (EVERY_KIND, _PROBLEM),
        # ``card_state``: why a card cannot pay or change its password (a settlement or
        # password change at the counter), shown like a refused move's state.
        (EVERY_KIND - {K.PHOTO_STUDIO}, _f("current_state allowed card_state")),
        (_BALANCE_SEEN_BY, _f("balance_fen")),
    ),
    # Who the caller is: their own, whole (a cardholder's ID number masked).
    R.ME: _rows(
        (
            EVERY_KIND,
            _f(
                "staff_id name role organization organization_kind bank_code operations "
                "kind authenticated_by person_id id_number scopes"
            ),
        )
    ),
    # ------------------------------------------------------------ logging in
    # A login's answer is the caller's own: the session token is shown once, to the
    # one who logged in (see ANONYMOUS: the login itself carries no actor yet).
    R.SESSION: _rows(
        (
            EVERY_KIND,
            _f("token token_type expires_at idle_timeout_minutes staff_id person_id organization"),
        )
    ),
    R.SELF_REGISTRATION: _rows((EVERY_KIND, _f("person_id registered"))),
    R.TOTP_ENROLMENT: _rows((EVERY_KIND, _f("secret otpauth_uri confirm_with"))),
    R.TOTP: _rows((EVERY_KIND, _f("enabled"))),
    # An organization's own staff and partner systems (staff.manage, credentials.manage
    # scope the records to the organization; the center's administrators any). A
    # credential's bearer value is only in the answer that makes or rotates it.
    R.STAFF: _rows(
        (
            ORGANIZATIONS,
            _f(
                "id org_id name role kind login active has_token totp_enabled failed_attempts "
                "locked_until created_at"
            ),
        )
    ),
    R.CREDENTIAL: _rows(
        (
            ORGANIZATIONS,
            _f(
                "id key_id system_name org_id staff_id created_at rotated_at last_used_at "
                "expires_at previous_secret_valid_until revoked_at bearer"
            ),
        )
    ),
    # ------------------------------------------------------------ the audit trail
    R.VERIFICATION: _rows(
        (
            {K.CENTER},
            _f(
                "intact complete from_seq sealed head_hash checked last_checked_seq unsealed broken"
            ),
        )
    ),
    R.CHAIN_BREAK: _rows(
        ({K.CENTER}, _f("chain_seq id occurred_at action problem detail")),
    ),
    # ------------------------------------------------------------ partner events
    # Webhooks, dead letters, attempts and replays are the subscribing organization's
    # own (webhooks.manage, events.read: own organization; the center also every dead
    # letter). The signing secret is only in the answer that makes or rotates it.
    R.WEBHOOK: _rows((ORGANIZATIONS, _f("id url event_types state created_at secret"))),
    R.DEAD_LETTER: _rows(
        (
            ORGANIZATIONS,
            _f("id subscription_id event_id attempts last_status last_error failed_at"),
        )
    ),
    R.REDELIVERY: _rows((ORGANIZATIONS, _f("delivery_id event_id state"))),
    R.ATTEMPT: _rows(
        (
            ORGANIZATIONS,
            _f("id event_id attempted_at status_code duration_ms error outcome"),
        )
    ),
    R.REPLAY: _rows((ORGANIZATIONS, _f("queued next"))),
    # A partner event's data, per kind of receiving party (events.model.partner_payload
    # builds it whole, then shapes it here; GET /events is shaped again, to the same).
    # Every receiving organization sees which event it is and what it is about; the
    # person only by internal id, and only to those who see persons by id (the
    # register's owners, the card's bank, the person's unit). Hospitals, pharmacies
    # and counter parties know the card they were presented, not the person's id. The
    # photo studio receives no events (events.model.FAMILIES), so it has no row.
    R.EVENT: _rows(
        (
            ORGANIZATIONS - {K.PHOTO_STUDIO},
            _f("id sequence type occurred_at subject detail"),
        ),
        ({K.CENTER, K.SERVICE_POINT, K.BANK, K.OUTLET, K.UNIT}, _f("person_id")),
    ),
    R.EVENT_DETAIL: _rows(
        (ORGANIZATIONS - {K.PHOTO_STUDIO}, _EVENT_EVERYONE),
        # The bank names the card by its serial, the form it produces, and the moves
        # of the financial application (C-1).
        (BANK_SIDE, _f("bank_code serial form_number transition_id card_action event_id")),
        # A unit follows its own bundles: the forms, the stage, a late return.
        ({K.UNIT}, _f("bank_code unit_org_id form_number forms stage late fields")),
        ({K.SERVICE_POINT}, _f("bank_code unit_org_id form_number forms stage fields")),
        # Hospitals and pharmacies: the payments at their own counter.
        ({K.HOSPITAL, K.PHARMACY}, _f("amount_fen settlement_id")),
        # The center receives every event's whole detail (EVERY_KEY below); its row
        # lists the keys it shares with the others.
        ({K.CENTER}, _f("agent")),
    ),
}

# Envelopes hold nested resources (and the paging cursor): every key for everyone.
ENVELOPES: dict[Resource, frozenset[str]] = {
    R.CARD_MOVED: _f("card transitions fee"),
    R.REISSUE: _f("old_card transitions new_card fee"),
    R.BATCH_ISSUED: _f("batch forms"),
    R.ACCOUNT_CHANGED: _f("account event"),
    R.ACCOUNT_DETAIL: _f("account events"),
    R.PERSON_PAGE: _f("items next"),
    R.CARD_PAGE: _f("items next"),
    R.ORGANIZATION_PAGE: _f("items next"),
    R.ACCESS_LOG_PAGE: _f("items next"),
    R.SELF_ACCOUNT: _f("balance_fen old_card_balance_fen entries next contributions"),
    R.STAFF_PAGE: _f("items next"),
    R.CREDENTIAL_PAGE: _f("items next"),
    R.AUDIT_PAGE: _f("items next"),
    R.WEBHOOK_LIST: _f("items"),
    R.DEAD_LETTER_PAGE: _f("items next"),
    R.ATTEMPT_PAGE: _f("items next"),
    R.EVENT_PAGE: _f("items next"),
    R.EVENT_BODY: _f("type timestamp data"),
}

# Which fields hold another resource (or a list of them).
NESTED: dict[Resource, dict[str, Resource]] = {
    R.TRANSITION: {"agent": R.AGENT},
    R.SUMMARY: {"batch": R.BATCH, "lines": R.SUMMARY_LINE},
    R.STATEMENT: {"entries": R.ENTRY, "contributions": R.CONTRIBUTION},
    R.SELF_ACCOUNT: {"entries": R.ENTRY, "contributions": R.CONTRIBUTION},
    R.PASSWORD_CHECK: {"account": R.BANK_ACCOUNT},
    R.CARD_MOVED: {"card": R.CARD, "transitions": R.TRANSITION, "fee": R.FEE},
    R.REISSUE: {"old_card": R.CARD, "new_card": R.CARD, "transitions": R.TRANSITION, "fee": R.FEE},
    R.BATCH_ISSUED: {"batch": R.BATCH, "forms": R.APPLICATION},
    R.ACCOUNT_CHANGED: {"account": R.BANK_ACCOUNT, "event": R.BANK_EVENT},
    R.ACCOUNT_DETAIL: {"account": R.BANK_ACCOUNT, "events": R.BANK_EVENT},
    R.PERSON_PAGE: {"items": R.PERSON},
    R.CARD_PAGE: {"items": R.CARD},
    R.ORGANIZATION_PAGE: {"items": R.ORGANIZATION},
    R.ACCESS_LOG_PAGE: {"items": R.ACCESS_LOG_ENTRY},
    R.STAFF_PAGE: {"items": R.STAFF},
    R.CREDENTIAL_PAGE: {"items": R.CREDENTIAL},
    R.AUDIT_PAGE: {"items": R.AUDIT_ENTRY},
    R.VERIFICATION: {"broken": R.CHAIN_BREAK},
    R.WEBHOOK_LIST: {"items": R.WEBHOOK},
    R.DEAD_LETTER_PAGE: {"items": R.DEAD_LETTER},
    R.ATTEMPT_PAGE: {"items": R.ATTEMPT},
    R.EVENT_PAGE: {"items": R.EVENT_BODY},
    R.EVENT_BODY: {"data": R.EVENT},
    R.EVENT: {"detail": R.EVENT_DETAIL},
}

# Resources whose keys are open-ended, and the kinds that see every key of them: the
# center receives each partner event's whole detail, as the change recorded it
# (already scrubbed: an audit detail holds counts and masked numbers only), since it
# reads the whole audit trail anyway (audit.read).
EVERY_KEY: dict[Resource, frozenset[OrgKind]] = {R.EVENT_DETAIL: frozenset({K.CENTER})}

# What a caller with no actor yet (the login routes) is shown: their own new session,
# and that their self-service login was registered. Everything else needs an actor.
ANONYMOUS: dict[Resource, frozenset[str]] = {
    R.SESSION: VISIBLE[R.SESSION][K.CENTER],
    R.SELF_REGISTRATION: VISIBLE[R.SELF_REGISTRATION][K.CENTER],
}

# The masked fields of each resource and how they are masked. Masking is idempotent,
# so an already masked value passes unchanged.
Masker = Callable[[str], str]
MASKED: dict[Resource, dict[str, Masker]] = {
    R.PERSON: {"id_number": mask_id_number, "phone": mask_phone},
    R.CARD: {"bank_card_number": mask_bank_card},
    R.BANK_ACCOUNT: {"bank_card_number": mask_bank_card, "holder_id_number": mask_id_number},
    R.SUMMARY_LINE: {"id_number": mask_id_number},
    R.AGENT: {"id_number": mask_id_number},
    R.ME: {"id_number": mask_id_number},
}

# Who may ask to see a masked field in full (POST .../disclosures, audited). Agents'
# and summary lines' ID numbers are stored masked and have no full value to show.
FULL: dict[Resource, dict[OrgKind, frozenset[str]]] = {
    R.PERSON: _rows(
        # The register's owners check identity documents against the record.
        ({K.CENTER, K.SERVICE_POINT}, _f("id_number phone")),
        # The bank side needs the full ID number for its own customer checks and the
        # phone to reach the holder of an undeliverable card (D-1).
        (BANK_SIDE, _f("id_number phone")),
        # The insured person may always see their own record in full.
        ({K.CARDHOLDER}, _f("id_number phone")),
    ),
    R.CARD: _rows((BANK_SIDE | {K.CENTER, K.CARDHOLDER}, _f("bank_card_number"))),
    R.BANK_ACCOUNT: _rows((BANK_SIDE | {K.CARDHOLDER}, _f("bank_card_number holder_id_number"))),
}


def _row(resource: Resource, kind: OrgKind) -> frozenset[str]:
    if resource is R.OPERATIONS:
        raise ValueError("operational answers hold no personal data and are not shaped")
    if resource in ENVELOPES:
        return ENVELOPES[resource]
    return VISIBLE[resource].get(kind, frozenset())


def visible_fields(kind: OrgKind | str, resource: Resource | str) -> frozenset[str]:
    """The fields of ``resource`` that a party of ``kind`` sees (S-1)."""
    return _row(Resource(resource), OrgKind(kind))


def full_fields(kind: OrgKind | str, resource: Resource | str) -> frozenset[str]:
    """The masked fields of ``resource`` a party of ``kind`` may ask to see in full."""
    res, k = Resource(resource), OrgKind(kind)
    return FULL.get(res, {}).get(k, frozenset()) & _row(res, k)


def masked_fields(resource: Resource | str) -> frozenset[str]:
    """The fields of ``resource`` shown masked unless a full view is granted."""
    return frozenset(MASKED.get(Resource(resource), {}))


def _shown(kind: OrgKind, inner: Resource | None, masker: Masker | None, value: Any) -> Any:
    if value is None:
        return None
    if inner is not None:
        if isinstance(value, Mapping):
            return disclose(kind, inner, value)
        if isinstance(value, list | tuple):
            return [disclose(kind, inner, v) if isinstance(v, Mapping) else v for v in value]
        return value
    if masker is not None and isinstance(value, str):
        return masker(value)
    return value


def disclose(
    kind: OrgKind | str,
    resource: Resource | str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Keep only the keys ``kind`` sees, masked, recursing into nested resources."""
    res, k = Resource(resource), OrgKind(kind)
    if res is R.OPERATIONS:
        return dict(data)
    keep = _row(res, k)
    every_key = k in EVERY_KEY.get(res, frozenset())
    nested = NESTED.get(res, {})
    maskers = MASKED.get(res, {})
    out: dict[str, Any] = {}
    for key, value in data.items():
        if every_key or key in keep:
            out[key] = _shown(k, nested.get(key), maskers.get(key), value)
    return out


def disclose_anonymous(resource: Resource | str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a caller with no actor (a login) sees of ``resource``; None: nothing at all."""
    keep = ANONYMOUS.get(Resource(resource))
    if keep is None:
        return None
    return {key: value for key, value in data.items() if key in keep}


def problem(kind: OrgKind | str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """A problem document as ``kind`` may see it; unauthenticated callers get the base keys."""
    if kind is None:
        return {k: v for k, v in data.items() if k in _PROBLEM}
    return disclose(kind, R.PROBLEM, data)


# Whose record a resource is: (field, what the field identifies). The access log
# resolves cards and applications to their person.
SUBJECT_OF: dict[Resource, tuple[str, str]] = {
    R.PERSON: ("id", "person"),
    R.PERSON_RECORD: ("person_id", "person"),
    R.CHANGE_REQUEST: ("person_id", "person"),
    R.CARD: ("person_id", "person"),
    R.APPLICATION: ("person_id", "person"),
    R.STATEMENT: ("person_id", "person"),
    R.CARD_CHECK: ("card_id", "card"),
    R.TRANSITION: ("card_id", "card"),
    R.BANK_ACCOUNT: ("card_id", "card"),
    R.SUMMARY_LINE: ("application_id", "application"),
}


def subjects(resource: Resource | str, data: Any) -> list[tuple[Resource, str, int]]:
    """Every (resource, kind of id, id) of a person's record found in ``data``."""
    found: list[tuple[Resource, str, int]] = []
    res = Resource(resource)

    def walk(r: Resource, value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                walk(r, v)
            return
        if not isinstance(value, Mapping):
            return
        key = SUBJECT_OF.get(r)
        if key is not None and isinstance(value.get(key[0]), int):
            found.append((r, key[1], value[key[0]]))
        for name, inner in NESTED.get(r, {}).items():
            walk(inner, value.get(name))

    if res is not R.OPERATIONS:
        walk(res, data)
    return found


_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{6}(?:19|20)[0-9]{9}[0-9Xx](?![0-9Xx])")
_BANK_CARD = re.compile(r"(?<![0-9])[3-6][0-9]{15,18}(?![0-9])")
# A mainland mobile number (11 digits from 13 to 19), with or without the +86 prefix.
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9])")


def scrub(text: str) -> str:
    """Mask anything in ``text`` shaped like an ID number, a bank card number or a
    mobile phone number."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _BANK_CARD.sub(lambda m: mask_bank_card(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
