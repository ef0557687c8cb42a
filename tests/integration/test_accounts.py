"""The medical personal account: ledger, settlement, refunds, passwords (C-4, V-*, P-*, R-2)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from sscard.accounts import inquiry, passwords
from sscard.accounts.imports import import_contributions, import_old_card_balances
from sscard.accounts.ledger import Leg, account, check, post
from sscard.accounts.model import AccountKind, InsufficientBalance, TxnKind
from sscard.accounts.tables import LedgerAccount, MedicalPassword
from sscard.cards import loss
from sscard.cards.model import CardNotUsable, CardState
from sscard.cards.tables import Card
from sscard.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sscard.core.passwords import PasswordLocked, WrongPassword
from sscard.jobs.sweeper import sweep
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World

PIN = "482913"


def credit(world: World, person_id: int, amount: int) -> None:
    """Put money on a person's account the way a contribution does (fund pool → person)."""
    unit = world.unit()
    with world.rt.uow() as uow:
        s, now = uow.session, world.rt.now()
        pool = account(s, AccountKind.FUND_POOL, org_id=unit.id, now=now)
        mine = account(s, AccountKind.PERSONAL, person_id=person_id, now=now)
        post(
            s,
            kind=TxnKind.CONTRIBUTION,
            person_id=person_id,
            now=now,
            legs=[Leg(mine.id, amount), Leg(pool.id, -amount, may_go_negative=True)],
        )
        uow.commit()


def ready_card(world: World, *, balance: int = 10_000, state: str = "active") -> Card:
    card = world.card(state)
    world.set_consumption_password(card.person_id, PIN, field="pin", event="set")
    if balance:
        credit(world, card.person_id, balance)
    return card


def pay(
    world: World,
    card: Card,
    amount: int,
    key: str,
    *,
    kind: str = "outpatient",
    password: str | None = PIN,
    **extra: str,
) -> SimpleNamespace:
    org = OrgKind.PHARMACY if kind == "pharmacy" else OrgKind.HOSPITAL
    return world.settle(
        world.actor(org), card, amount, key=key, kind=kind, password=password, **extra
    )


def personal_balance(world: World, person_id: int) -> int:
    with world.rt.uow() as uow:
        return int(
            uow.session.scalar(
                select(LedgerAccount.balance_fen).where(
                    LedgerAccount.person_id == person_id,
                    LedgerAccount.kind == AccountKind.PERSONAL.value,
                )
            )
            or 0
        )


def test_c_4_settlement_debits_and_ledger_balances(world: World) -> None:
    card = ready_card(world, balance=10_000)
    receipt = pay(world, card, 2_500, "visit-1")
    assert (receipt.balance_fen, receipt.amount_fen, receipt.replayed) == (7_500, 2_500, False)
    with world.rt.uow() as uow:
        assert check(uow.session) == []


def test_c_4_replaced_card_sees_the_same_balance(world: World) -> None:
    card = ready_card(world, balance=8_000)
    pay(world, card, 1_000, "before-loss")
    outlet = world.actor(OrgKind.OUTLET)
    with world.rt.uow() as uow:
        loss.report_loss_written(uow, world.rt, actor=outlet, card_id=card.id)
    with world.rt.uow() as uow:
        new = loss.replace_card(uow, world.rt, actor=outlet, card_id=card.id).new_card
    world.goto(new.ready_on)
    new = world.produce(new)
    from sscard.cards import service as cards

    with world.rt.uow() as uow:
        new = cards.pickup(
            uow, world.rt, actor=outlet, card_id=new.id, by="holder", activate=True
        ).card
    receipt = pay(world, new, 500, "after-replacement")
    assert receipt.balance_fen == 6_500
    with pytest.raises(CardNotUsable):
        pay(world, card, 100, "old-card")


def test_c_4_never_below_zero(world: World) -> None:
    card = ready_card(world, balance=1_000)
    with pytest.raises(InsufficientBalance) as exc:
        pay(world, card, 1_001, "too-much")
    assert exc.value.extra["balance_fen"] == 1_000
    assert personal_balance(world, card.person_id) == 1_000


@pytest.mark.parametrize("state", ["lost_oral", "lost_written"])
def test_r_2_no_debit_while_reported_lost(world: World, state: str) -> None:
    card = ready_card(world, state=state)
    with pytest.raises(CardNotUsable) as exc:
        pay(world, card, 100, f"lost-{state}")
    assert exc.value.extra["card_state"] == state


def test_l_1_debits_resume_when_the_oral_report_lapses(world: World) -> None:
    card = ready_card(world, state="lost_oral", balance=3_000)
    with pytest.raises(CardNotUsable):
        pay(world, card, 100, "while-lost")
    world.advance(days=6)
    sweep(world.rt)
    assert pay(world, card, 100, "after-lapse").balance_fen == 2_900


def test_v_2_unactivated_card_pays_nothing_without_setting_a_password(world: World) -> None:
    card = world.card("received")
    credit(world, card.person_id, 5_000)
    with pytest.raises(InvalidInput) as exc:
        pay(world, card, 100, "first", password=None)
    assert exc.value.field == "new_password"
    assert world.reload(card).state == CardState.RECEIVED


def test_v_1_first_outpatient_registration_activates_and_settles(world: World) -> None:
    card = world.card("received")
    credit(world, card.person_id, 5_000)
    receipt = pay(world, card, 1_200, "first-visit", password=None, new_password=PIN)
    assert receipt.activated
    assert receipt.card_state == "active"
    fresh = world.reload(card)
    assert (fresh.state, fresh.activation_channel) == ("active", "hospital")
    assert pay(world, card, 300, "second-visit").balance_fen == 3_500


def test_v_1_pharmacy_first_use_moves_the_old_card_balance(world: World, tmp_path: Path) -> None:
    person = world.person(old_card=True)
    card = world.card("received", person=person)
    csv = tmp_path / "old.csv"
    csv.write_text(f"id_number,balance_fen\n{person.id_number},4000\n")
    with world.rt.uow() as uow:
        report = import_old_card_balances(
            uow, world.rt, actor=world.actor(OrgKind.CENTER, role="supervisor"), path=csv
        )
    assert report.written == 1
    with pytest.raises(InvalidInput):  # the old medical card goes in first
        pay(world, card, 500, "ph-1", kind="pharmacy", password=None, new_password=PIN)
    receipt = pay(
        world,
        card,
        500,
        "ph-2",
        kind="pharmacy",
        password=None,
        new_password=PIN,
        old_medical_card_no="YB000000001",
    )
    assert receipt.balance_fen == 3_500
    with world.rt.uow() as uow:
        fresh = uow.session.get(Person, person.id)
        st = inquiry.statement(uow.session, person_id=person.id, after=None, limit=10)
        assert check(uow.session) == []
    assert fresh is not None
    assert fresh.old_medical_card_state == "closed"
    assert st.old_card_balance_fen == 0


def test_v_6_activation_restores_the_medical_account(world: World) -> None:
    card = world.card("received")
    credit(world, card.person_id, 2_000)
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    with pytest.raises(InvalidInput):
        pay(world, card, 100, "before")
    from sscard.cards import service as cards

    with world.rt.uow() as uow:
        cards.activate(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_id=card.id,
            channel="outlet",
            also=passwords.set_at_activation(world.rt, world.actor(OrgKind.OUTLET), PIN),
        )
    assert pay(world, card, 100, "after").balance_fen == 1_900


def test_idempotent_retry_never_debits_twice(world: World) -> None:
    card = ready_card(world, balance=5_000)
    first = pay(world, card, 700, "retry-me")
    again = pay(world, card, 700, "retry-me")
    assert again.replayed
    assert again.transaction_id == first.transaction_id
    assert personal_balance(world, card.person_id) == 4_300
    with pytest.raises(InvalidInput) as exc:
        pay(world, card, 800, "retry-me")
    assert exc.value.code == "idempotency_key_reused"


def test_refund_once_for_at_most_the_original(world: World) -> None:
    card = ready_card(world, balance=5_000)
    paid = pay(world, card, 1_000, "to-refund")
    hospital = world.actor(OrgKind.HOSPITAL)
    with pytest.raises(InvalidInput):
        world.refund(hospital, paid.transaction_id, 1_001, key="r0")
    with pytest.raises(NotFound):
        world.refund(world.actor(OrgKind.PHARMACY), paid.transaction_id, 100, key="r1")
    back = world.refund(hospital, paid.transaction_id, 600, key="r2")
    assert back.balance_fen == 4_600
    with pytest.raises(Conflict):
        world.refund(hospital, paid.transaction_id, 100, key="r3")
    assert world.refund(hospital, paid.transaction_id, 600, key="r2").replayed


def test_p_1_trivial_or_malformed_passwords_are_refused(world: World) -> None:
    card = world.card("received")
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    birth = f"{person.birth_date:%y%m%d}"
    for bad in ("123456", "000000", "12345", "abcdef", birth):
        with pytest.raises(InvalidInput):
            pay(world, card, 100, f"p-{bad}", password=None, new_password=bad)
    assert world.reload(card).state == CardState.RECEIVED


def test_p_2_locked_after_wrong_entries_then_reset_at_outlet(world: World) -> None:
    card = ready_card(world, balance=5_000)
    limit = world.rt.policy.passwords.max_wrong_attempts
    for i in range(limit - 1):
        with pytest.raises(WrongPassword):
            pay(world, card, 100, f"wrong-{i}", password="777777")
    with pytest.raises(PasswordLocked):
        pay(world, card, 100, "wrong-last", password="777777")
    with pytest.raises(PasswordLocked):  # even the right one, while locked
        pay(world, card, 100, "right-but-locked")
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
    with world.rt.uow() as uow, pytest.raises(NotFound):
        passwords.reset(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET, "BOC"),
            card_number=card.card_number or "",
            id_number=person.id_number,
            new_password="593028",
        )
    with world.rt.uow() as uow:
        passwords.reset(
            uow,
            world.rt,
            actor=world.actor(OrgKind.OUTLET),
            card_number=card.card_number or "",
            id_number=person.id_number,
            new_password="593028",
        )
    assert pay(world, card, 100, "after-reset", password="593028").balance_fen == 4_900


def test_p_3_pharmacy_changes_the_password_with_the_old_one(world: World) -> None:
    card = ready_card(world, balance=1_000)
    pharmacy = world.actor(OrgKind.PHARMACY)
    with pytest.raises(WrongPassword), world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=pharmacy,
            card_number=card.card_number or "",
            old_password="777777",
            new_password="602417",
        )
    with world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=pharmacy,
            card_number=card.card_number or "",
            old_password=PIN,
            new_password="602417",
        )
    assert pay(world, card, 100, "new-pin", password="602417").balance_fen == 900
    with pytest.raises(Forbidden), world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=world.actor(OrgKind.HOSPITAL),
            card_number=card.card_number or "",
            old_password="602417",
            new_password="602418",
        )


def test_c_4_contribution_file_credits_accounts_line_by_line(world: World, tmp_path: Path) -> None:
    unit = world.unit()
    people = [world.person(unit=unit) for _ in range(3)]
    stranger = world.person()
    csv = tmp_path / "contrib.csv"
    csv.write_text(
        "id_number,month,amount_fen\n"
        f"{people[0].id_number},2026-10,15000\n"
        f"{people[1].id_number},2026-10,12000\n"
        f"{stranger.id_number},2026-10,9000\n"
        f"{people[2].id_number},2026-13,9000\n"
    )
    center = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        report = import_contributions(uow, world.rt, actor=center, unit_code=unit.code, path=csv)
    assert [(e.line, e.field) for e in report.errors] == [(5, "month"), (4, "id_number")] or sorted(
        (e.line, e.field) for e in report.errors
    ) == [(4, "id_number"), (5, "month")]
    assert personal_balance(world, people[0].id) == 0  # nothing written
    with world.rt.uow() as uow:
        report = import_contributions(
            uow, world.rt, actor=center, unit_code=unit.code, path=csv, skip_invalid=True
        )
    assert report.written == 2
    assert personal_balance(world, people[0].id) == 15_000
    with world.rt.uow() as uow:
        again = import_contributions(
            uow, world.rt, actor=center, unit_code=unit.code, path=csv, skip_invalid=True
        )
        st = inquiry.statement(uow.session, person_id=people[0].id, after=None, limit=10)
        assert check(uow.session) == []
    assert again.written == 0  # each month once
    assert [(c.month, c.amount_fen) for c in st.contributions] == [("2026-10", 15_000)]
    assert [e.amount_fen for e in st.entries.items] == [15_000]


def test_c_4_ledger_check_names_a_tampered_balance(world: World) -> None:
    card = ready_card(world, balance=2_000)
    with world.rt.uow() as uow:
        uow.session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.person_id == card.person_id)
            .values(balance_fen=999_999)
        )
        problems = check(uow.session)
    assert [(p.what, p.stored) for p in problems] == [("account", 999_999)]


def test_v_1_pharmacy_activation_at_the_counter_moves_the_old_card_balance(
    world: World, tmp_path: Path
) -> None:
    from sscard.cards import service as cards

    person = world.person(old_card=True)
    card = world.card("received", person=person)
    csv = tmp_path / "old.csv"
    csv.write_text(f"id_number,balance_fen\n{person.id_number},2500\n")
    with world.rt.uow() as uow:
        import_old_card_balances(
            uow, world.rt, actor=world.actor(OrgKind.CENTER, role="supervisor"), path=csv
        )
    pharmacy = world.actor(OrgKind.PHARMACY)
    with world.rt.uow() as uow:
        cards.activate(
            uow,
            world.rt,
            actor=pharmacy,
            card_id=card.id,
            channel="pharmacy",
            old_medical_card_no="YB000000001",
            also=passwords.set_at_activation(world.rt, pharmacy, PIN),
            card_number=card.card_number,
        )
    assert personal_balance(world, person.id) == 2_500
    with world.rt.uow() as uow:
        assert check(uow.session) == []


def test_v_1_old_card_read_later_at_a_pharmacy_hands_over_its_balance(
    world: World, tmp_path: Path
) -> None:
    person = world.person(old_card=True)
    mine = world.card("active", person=person)  # activated at an outlet: old card still open
    world.set_consumption_password(person.id, PIN, field="pin", event="set")
    csv = tmp_path / "old.csv"
    csv.write_text(f"id_number,balance_fen\n{person.id_number},3000\n")
    with world.rt.uow() as uow:
        import_old_card_balances(
            uow, world.rt, actor=world.actor(OrgKind.CENTER, role="supervisor"), path=csv
        )
    receipt = pay(
        world, mine, 1_000, "ph-later", kind="pharmacy", old_medical_card_no="YB000000001"
    )
    assert receipt.balance_fen == 2_000


def test_v_1_old_card_balance_is_taken_over_once(world: World, tmp_path: Path) -> None:
    person = world.person(old_card=True)
    csv = tmp_path / "old.csv"
    csv.write_text(f"id_number,balance_fen\n{person.id_number},4000\n{person.id_number},4000\n")
    center = world.actor(OrgKind.CENTER, role="supervisor")
    with world.rt.uow() as uow:
        twice = import_old_card_balances(uow, world.rt, actor=center, path=csv)
    assert [(e.line, e.field) for e in twice.errors] == [(3, "id_number")]
    csv.write_text(f"id_number,balance_fen\n{person.id_number},4000\n")
    with world.rt.uow() as uow:
        assert import_old_card_balances(uow, world.rt, actor=center, path=csv).written == 1
    with world.rt.uow() as uow:
        again = import_old_card_balances(uow, world.rt, actor=center, path=csv)
    assert again.written == 0
    assert "already taken over" in again.errors[0].message


def test_v_1_first_use_refused_when_the_card_was_activated_meanwhile(world: World) -> None:
    """A first use (new password, no password) meets a card activated elsewhere a moment
    before: refused with the reason, and no wrong password counted against the holder."""
    card = ready_card(world, balance=1_000)  # already active, password set
    with pytest.raises(Conflict) as exc:
        pay(world, card, 100, "first-after-all", password=None, new_password="602417")
    assert exc.value.extra["reason"] == "activated_meanwhile"
    assert personal_balance(world, card.person_id) == 1_000
    with world.rt.uow() as uow:
        row = uow.session.get(MedicalPassword, card.person_id)
        assert row is not None
        assert row.failed_attempts == 0


def test_v_1_first_use_activates_even_when_the_account_is_empty(world: World) -> None:
    card = world.card("received")
    with pytest.raises(InsufficientBalance):
        pay(world, card, 100, "empty-first", password=None, new_password=PIN)
    assert world.reload(card).state == CardState.ACTIVE  # the registration activated it
    credit(world, card.person_id, 500)
    assert pay(world, card, 100, "then-pays").balance_fen == 400


def test_replayed_receipt_shows_the_first_answer(world: World) -> None:
    card = ready_card(world, balance=5_000)
    first = pay(world, card, 700, "same-receipt")
    credit(world, card.person_id, 9_000)
    again = pay(world, card, 700, "same-receipt")
    assert again.replayed
    assert again.balance_fen == first.balance_fen == 4_300


def test_p_3_no_password_change_with_a_lost_or_dead_card(world: World) -> None:
    card = ready_card(world, state="replaced", balance=0)
    with pytest.raises(CardNotUsable), world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=world.actor(OrgKind.PHARMACY),
            card_number=card.card_number or "",
            old_password=PIN,
            new_password="602417",
        )


def test_c_4_ledger_check_finds_a_negative_personal_balance(world: World) -> None:
    card = ready_card(world, balance=500)
    with world.rt.uow() as uow:
        uow.session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.person_id == card.person_id)
            .values(balance_fen=-5)
        )
        problems = check(uow.session)
    assert ("negative balance", -5) in [(p.what, p.stored) for p in problems]


def test_p_3_only_an_authorised_pharmacy_changes_passwords(world: World) -> None:
    from sscard.register import service as register

    card = ready_card(world, balance=0)
    plain = world.org(OrgKind.PHARMACY, authorised=False)
    pharmacy = world.staff_of(plain)
    with pytest.raises(Forbidden) as exc, world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=pharmacy,
            card_number=card.card_number or "",
            old_password=PIN,
            new_password="602417",
        )
    assert exc.value.extra["reason"] == "not_authorised"
    with world.rt.uow() as uow:
        register.authorise(
            uow,
            world.rt,
            actor=world.actor(OrgKind.CENTER, role="supervisor"),
            org_id=plain.id,
            service="password_change",
            granted=True,
        )
    with world.rt.uow() as uow:
        passwords.change(
            uow,
            world.rt,
            actor=pharmacy,
            card_number=card.card_number or "",
            old_password=PIN,
            new_password="602417",
        )
    with world.rt.uow() as uow:
        passwords.verify(uow, world.rt, actor=pharmacy, person_id=card.person_id, password="602417")


def test_p_3_unauthorised_platform_cannot_activate(world: World) -> None:
    from sscard.cards import service as cards
    from sscard.core.errors import Forbidden as Refused

    platform = world.staff_of(world.org(OrgKind.GRASSROOTS, authorised=False))
    card = world.card("received")
    with world.rt.uow() as uow, pytest.raises(Refused):
        cards.activate(
            uow,
            world.rt,
            actor=platform,
            card_id=card.id,
            channel="grassroots",
            card_number=card.card_number,
        )
