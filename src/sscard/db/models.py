"""Imports every table so that ``Base.metadata`` is complete (Alembic, tests)."""

from sscard.access import tables as access_tables
from sscard.accounts import tables as account_tables
from sscard.applications import tables as application_tables
from sscard.audit import tables as audit_tables
from sscard.bank import tables as bank_tables
from sscard.cards import tables as card_tables
from sscard.db.base import Base
from sscard.db.counters import Counter
from sscard.db.idempotency import IdempotencyRecord
from sscard.events import tables as event_tables
from sscard.region import tables as region_tables
from sscard.register import tables as register_tables

__all__ = [
    "Base",
    "Counter",
    "IdempotencyRecord",
    "access_tables",
    "account_tables",
    "application_tables",
    "audit_tables",
    "bank_tables",
    "card_tables",
    "event_tables",
    "region_tables",
    "register_tables",
]
