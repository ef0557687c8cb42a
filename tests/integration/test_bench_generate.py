"""The benchmarks' region generator writes data the services can read and trust.

A small region (200 cardholders) goes into the scratch PostgreSQL database with COPY;
every value is read back through the project's own tables and functions.
"""

from __future__ import annotations

from bench.generate import BENCH_PIN, generate
from sqlalchemy import func, select

from sscard.accounts.ledger import check
from sscard.accounts.passwords import verifier
from sscard.accounts.tables import LedgerAccount, MedicalPassword
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.ids import parse_id_number
from sscard.core.protect import BANK_CARD_NUMBER, ID_NUMBER, SOCIAL
from sscard.db.types import blind
from sscard.register.tables import Person
from sscard.runtime import Runtime

CARDHOLDERS = 200


def test_generated_region_is_valid(pg_url: str, committed_rt: Runtime) -> None:
    region = generate(pg_url, cardholders=CARDHOLDERS, workers=1, show_progress=False)
    assert region.cardholders == CARDHOLDERS
    with committed_rt.uow() as uow:
        s = uow.session
        persons = list(s.scalars(select(Person).where(Person.id >= region.first_person_id)))
        assert len(persons) == CARDHOLDERS
        for person in persons:
            # ID-1: the sealed number opens, is valid, and its blind index finds it.
            parsed = parse_id_number(person.id_number)
            assert parsed.birth_date == person.birth_date
            assert parsed.gender == person.gender
            assert person.id_number_hash == blind(SOCIAL, ID_NUMBER, person.id_number)
            assert person.name
        cards = list(s.scalars(select(Card).where(Card.person_id >= region.first_person_id)))
        states = {c.state for c in cards}
        assert CardState.ACTIVE.value in states
        assert len(states) >= 4, states
        assert len({c.person_id for c in cards}) == CARDHOLDERS  # everyone has a card
        orphans = s.scalar(
            select(func.count())
            .select_from(Card)
            .outerjoin(Person, Person.id == Card.person_id)
            .where(Person.id.is_(None))
        )
        assert orphans == 0
        for card in cards:
            if card.bank_card_number is not None:
                assert len(card.bank_card_number) == 19
                assert card.bank_card_number_hash == blind(
                    SOCIAL, BANK_CARD_NUMBER, card.bank_card_number
                )
        # Usable cards' holders have the known consumption password.
        passwords = dict(
            s.execute(select(MedicalPassword.person_id, MedicalPassword.password_hash)).all()
        )
        active = {c.person_id for c in cards if c.state == CardState.ACTIVE.value}
        assert active
        assert active <= set(passwords)
        for person_id in active:
            assert passwords[person_id] == verifier(person_id, BENCH_PIN)
        # Every account's balance is the sum of its entries; everyone has money.
        assert check(s) == []
        personal = s.scalar(
            select(func.count())
            .select_from(LedgerAccount)
            .where(LedgerAccount.person_id >= region.first_person_id, LedgerAccount.balance_fen > 0)
        )
        assert personal == CARDHOLDERS
