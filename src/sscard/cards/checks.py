"""The card check: is this card usable here and now (what a hospital asks first)?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor, RecordScope, require
from sscard.cards.model import CardState, why_not_usable
from sscard.cards.tables import Card
from sscard.core.errors import NotFound
from sscard.db.base import table
from sscard.db.statements import Prepared
from sscard.runtime import Runtime

_C = table(Card).c
# What a counter needs of the card presented to it: one indexed lookup, built once.
BY_NUMBER = select(
    _C.id, _C.person_id, _C.state, _C.valid_until, _C.unit_org_id, _C.bank_code
).where(_C.card_number == bindparam("number"))
_FIND = Prepared(BY_NUMBER)


@dataclass(frozen=True, slots=True)
class CardCheck:
    card_id: int
    person_id: int
    state: CardState
    reason: str | None  # None: usable


def check(s: Session, rt: Runtime, *, actor: Actor, card_number: str) -> CardCheck:
    """A counter party checks the card presented to it (S-1: only by its printed number).

    The same rule as a payment's (``cards.model.why_not_usable``): active, within validity.
    """
    require(actor, "cards.check")
    number = (card_number or "").strip().upper()
    card = _FIND.first(s, {"number": number})
    if card is None:
        raise NotFound(f"no card with card_number {number!r}", field="card_number")
    require(
        actor,
        "cards.check",
        RecordScope(
            what=f"card with card_number {number!r}",
            field="card_number",
            person_id=card.person_id,
            unit_org_id=card.unit_org_id,
            bank_codes=frozenset({card.bank_code}),
            presented=True,
        ),
    )
    state = CardState(card.state)
    reason = why_not_usable(state, valid_until=card.valid_until, today=rt.today())
    return CardCheck(card_id=card.id, person_id=card.person_id, state=state, reason=reason)
