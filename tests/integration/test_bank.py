"""The bank side: accounts that follow the card, financial activation, the financial password.

C-1, V-1, V-2, V-5, L-1, L-2, L-3, R-2, R-3, P-1, P-2, P-3, D-2 on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, event, func, select

from sscard.access.model import Actor
from sscard.audit.tables import AuditRecord
from sscard.bank import service as bank
from sscard.bank.model import AccountNotUsable
from sscard.bank.tables import BankAccount, BankAccountEvent
from sscard.cards import loss
from sscard.cards.model import CardState
from sscard.cards.tables import Card
from sscard.core.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from sscard.core.keys import BANK, SOCIAL, load_key
from sscard.core.passwords import PasswordLocked, PinKey, WrongPassword
from sscard.events.tables import OutboxEvent
from sscard.jobs.sweeper import sweep
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number

PIN = "802461"
NEW_PIN = "735194"


def _outlet(world: World, bank_code: str = "ICBC") -> Actor:
    return world.actor(OrgKind.OUTLET, bank_code)


def _id_of(world: World, card: Card) -> str:
    with world.rt.uow() as uow:
        person = uow.session.get(Person, card.person_id)
        assert person is not None
        return person.id_number


def _account(world: World, card: Card) -> BankAccount:
    with world.rt.uow() as uow:
        account = uow.session.scalar(select(BankAccount).where(BankAccount.card_id == card.id))
    assert account is not None, f"card {card.id} has no bank account"
    return account


def _actions(world: World, account: BankAccount) -> list[str]:
    with world.rt.uow() as uow:
        return list(
            uow.session.scalars(
                select(BankAccountEvent.action)
                .where(BankAccountEvent.account_id == account.id)
                .order_by(BankAccountEvent.id)
            )
        )


T = TypeVar("T")


def _use(
    world: World, use_case: Callable[..., T], card: Card, actor: Actor | None = None, **kw: Any
) -> T:
    """Run a bank use case on ``card`` at an outlet of its bank (or as ``actor``)."""
    with world.rt.uow() as uow:
        return use_case(
            uow,
            world.rt,
            actor=actor or _outlet(world, card.bank_code),
            bank_card_number=card.bank_card_number or "",
            **kw,
        )


def _activate(
    world: World,
    card: Card,
    password: str = PIN,
    *,
    actor: Actor | None = None,
    id_number: str | None = None,
) -> bank.AccountChange:
    holder = id_number or _id_of(world, card)
    return _use(
        world, bank.activate_financial, card, actor, id_number=holder, financial_password=password
    )


def _verify(world: World, card: Card, password: str) -> bank.PasswordCheck:
    return _use(world, bank.verify_financial_password, card, financial_password=password)


def _reset(
    world: World, card: Card, password: str, *, id_number: str = "", actor: Actor | None = None
) -> bank.AccountChange:
    holder = id_number or _id_of(world, card)
    return _use(
        world, bank.reset_financial_password, card, actor, id_number=holder, new_password=password
    )


def _written(world: World, card: Card) -> Card:
    with world.rt.uow() as uow:
        moved, _ = loss.report_loss_written(uow, world.rt, actor=_outlet(world), card_id=card.id)
    return moved.card


@pytest.fixture
def bank_updates(engine: Engine) -> Iterator[list[str]]:
    """The UPDATE statements sent to the bank's accounts table while the test runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE BANK_ACCOUNTS"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    yield seen
    event.remove(engine, "before_cursor_execute", listen)


def test_c_1_production_opens_an_issued_account_with_the_bank_s_own_data(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    account = _account(world, card)
    assert account.state == "issued"
    assert (account.bank_code, account.serial) == (card.bank_code, card.serial)
    assert account.bank_card_number == card.bank_card_number
    assert account.holder_id_number == _id_of(world, card)  # the bank's own KYC data
    assert account.password_hash is None
    assert _actions(world, account) == ["open"]
    with world.rt.uow() as uow:
        recorded = uow.session.execute(
            select(BankAccountEvent.bank_code, BankAccountEvent.channel).where(
                BankAccountEvent.account_id == account.id
            )
        ).all()
        audited = uow.session.scalars(
            select(AuditRecord.action).where(AuditRecord.subject_type == "bank_account")
        ).all()
    assert [tuple(r) for r in recorded] == [("ICBC", "center_message")]  # the bank's own record
    assert audited == []  # C-1: nothing in the center's audit trail


def test_v_1_bank_financial_activation_activates_the_social_security_application(
    world: World,
) -> None:
    card = world.card(CardState.RECEIVED)
    change = _activate(world, card)
    assert change.account.state == "active"
    assert change.event is not None
    assert (change.event.from_state, change.event.to_state) == ("issued", "active")
    center = world.reload(card)  # the center heard the V-1 message in the same transaction
    assert center.state == CardState.ACTIVE
    assert center.financial_activated_at == world.rt.now()
    assert center.activation_channel == "bank_financial"


def test_v_1_bank_financial_activation_needs_the_holder_s_id_and_the_card_s_bank(
    world: World,
) -> None:
    card = world.card(CardState.RECEIVED)
    with pytest.raises(InvalidInput) as refused:
        _activate(world, card, id_number=next_id_number())
    assert refused.value.field == "id_number"
    with pytest.raises(NotFound):
        _activate(world, card, actor=_outlet(world, "CCB"))
    with pytest.raises(Forbidden):
        _activate(world, card, actor=world.actor(OrgKind.PHARMACY))
    assert _account(world, card).state == "issued"
    assert world.reload(card).financial_activated_at is None


def test_v_1_bank_financial_activation_only_once(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _activate(world, card)
    with pytest.raises(IllegalTransition) as refused:
        _activate(world, card, NEW_PIN)
    assert refused.value.extra["current_state"] == "active"
    assert _verify(world, card, PIN).entry.verified  # the first password stands


@pytest.mark.parametrize("trivial", ["123456", "000000", "121212", "12345", "birth"])
def test_v_2_bank_financial_activation_refuses_a_trivial_password(
    world: World, trivial: str
) -> None:
    card = world.card(CardState.RECEIVED)
    if trivial == "birth":
        trivial = _id_of(world, card)[8:14]  # yymmdd of the holder's birth date
    with pytest.raises(InvalidInput) as refused:
        _activate(world, card, trivial)
    assert refused.value.field == "financial_password"
    assert trivial not in refused.value.detail
    # Nothing happened on either side: one transaction.
    assert _account(world, card).state == "issued"
    assert world.reload(card).state == CardState.RECEIVED


def test_v_2_an_account_without_activation_takes_no_password(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    with pytest.raises(AccountNotUsable) as refused:
        _verify(world, card, PIN)
    assert refused.value.extra["current_state"] == "issued"


def test_p_1_financial_password_stored_only_as_a_verification_value_under_the_bank_s_key(
    world: World,
) -> None:
    card = world.card(CardState.RECEIVED)
    account = _activate(world, card).account
    assert account.password_hash is not None
    assert account.password_hash.startswith("pv1:1:")
    assert PIN not in account.password_hash
    subject = f"bank_account:{account.id}"
    assert PinKey(load_key(BANK)).matches(account.password_hash, subject, PIN)
    # C-1: independent keys; the social side's key cannot check the financial password.
    assert not PinKey(load_key(SOCIAL)).matches(account.password_hash, subject, PIN)
    with world.rt.uow() as uow:
        details = uow.session.scalars(select(AuditRecord.detail)).all()
        journal = uow.session.scalars(select(BankAccountEvent.detail)).all()
    assert PIN not in repr(details)
    assert PIN not in repr(journal)


def test_p_2_locked_after_n_wrong_entries_and_reset_at_outlet(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _activate(world, card)
    limit = world.rt.policy.passwords.max_wrong_attempts
    for n in range(1, limit):
        check = _verify(world, card, "111222")
        assert not check.entry.verified
        assert check.entry.attempts_left == limit - n
    assert _verify(world, card, PIN).entry.verified  # a right entry resets the count
    assert _account(world, card).failed_attempts == 0
    for _ in range(limit):
        last = _verify(world, card, "111222")
    assert last.entry.locked
    assert _account(world, card).locked_at is not None
    with pytest.raises(PasswordLocked):
        _verify(world, card, PIN)  # refused even when right
    with pytest.raises(InvalidInput):
        _reset(world, card, NEW_PIN, id_number=next_id_number())  # another person's ID
    with pytest.raises(Forbidden):
        _reset(world, card, NEW_PIN, actor=world.actor(OrgKind.BANK, "ICBC"))  # outlets only
    reset = _reset(world, card, NEW_PIN)
    assert reset.account.locked_at is None
    assert reset.event is not None
    assert reset.event.detail == {"unlocked": True}
    assert _verify(world, card, NEW_PIN).entry.verified
    assert not _verify(world, card, PIN).entry.verified
    actions = _actions(world, _account(world, card))
    assert actions.count("password_wrong") == 2 * (limit - 1) + 1
    assert actions.count("password_locked") == 1
    assert "password_count_reset" in actions
    assert "password_reset" in actions


def test_p_3_change_with_the_old_password_counts_wrong_entries(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _activate(world, card)

    def change(old: str, new: str) -> bank.AccountChange:
        return _use(world, bank.change_financial_password, card, old_password=old, new_password=new)

    with pytest.raises(WrongPassword) as refused:
        change("111222", NEW_PIN)
    assert refused.value.extra["attempts_left"] == world.rt.policy.passwords.max_wrong_attempts - 1
    assert _account(world, card).failed_attempts == 1  # counted, though refused
    with pytest.raises(InvalidInput):
        change(PIN, "666666")  # trivial: refused before the old one is even checked
    assert _account(world, card).failed_attempts == 1
    changed = change(PIN, NEW_PIN)
    assert changed.account.failed_attempts == 0
    assert _verify(world, card, NEW_PIN).entry.verified


def test_l_2_written_report_freezes_the_bank_account(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _activate(world, card)
    _written(world, card)
    account = _account(world, card)
    assert (account.state, account.state_before_freeze) == ("frozen", "active")
    assert account.frozen_at == world.rt.now()
    with pytest.raises(AccountNotUsable) as refused:  # suspended during the loss
        _verify(world, card, PIN)
    assert refused.value.extra["current_state"] == "frozen"
    with pytest.raises(AccountNotUsable):
        _reset(world, card, NEW_PIN)


def test_l_3_cancellation_unfreezes(world: World) -> None:
    card = world.card(CardState.RECEIVED)
    _activate(world, card)
    lost = _written(world, card)
    with world.rt.uow() as uow:
        loss.cancel_loss_report(
            uow,
            world.rt,
            actor=_outlet(world),
            card_id=card.id,
            written_report_no=lost.written_report_no,
        )
    account = _account(world, card)
    assert (account.state, account.state_before_freeze, account.frozen_at) == ("active", None, None)
    assert _verify(world, card, PIN).entry.verified
    assert _actions(world, account) == ["open", "activate", "freeze", "unfreeze"]


def test_l_1_oral_lapse_unfreezes_a_whole_batch(world: World, bank_updates: list[str]) -> None:
    cards = world.cards(6, CardState.RECEIVED)
    for card in cards[:3]:
        _activate(world, card)
    for card in cards:
        with world.rt.uow() as uow:
            loss.report_loss_oral(
                uow, world.rt, actor=_outlet(world), card_id=card.id, channel="bank_phone"
            )
    assert {_account(world, c).state for c in cards} == {"frozen"}  # L-1 freezes at once
    world.advance(days=6)
    bank_updates.clear()
    assert sweep(world.rt).counts["oral_report_lapsed"] == 6
    assert len(bank_updates) == 1  # set-based: one UPDATE for the whole batch
    assert [_account(world, c).state for c in cards] == ["active"] * 3 + ["issued"] * 3
    with world.rt.uow() as uow:
        recorded = uow.session.scalar(
            select(func.count())
            .select_from(BankAccountEvent)
            .where(
                BankAccountEvent.action == "unfreeze",
                BankAccountEvent.channel == "center_message",
            )
        )
    assert recorded == 6


def test_l_1_oral_report_then_written_report_keeps_the_account_frozen(world: World) -> None:
    card = world.card(CardState.LOST_ORAL)
    _written(world, card)
    account = _account(world, card)
    assert (account.state, account.state_before_freeze) == ("frozen", "issued")
    assert _actions(world, account) == ["open", "freeze"]


def test_r_3_replacement_closes_the_account(world: World) -> None:
    card = world.card(CardState.REPLACED)
    account = _account(world, card)
    assert (account.state, account.closed_at) == ("closed", world.rt.now())
    with pytest.raises(IllegalTransition) as refused:
        _activate(world, card)
    assert refused.value.extra["allowed"] == []
    new = world.reload(card).replaced_by_card_id
    assert new is not None
    with world.rt.uow() as uow:
        assert uow.session.scalar(select(BankAccount).where(BankAccount.card_id == new)) is None
        new_card = uow.session.get(Card, new)
    assert new_card is not None
    world.goto(new_card.ready_on)
    produced = world.produce(new_card)
    assert _account(world, produced).state == "issued"  # a new card, a new account


def test_r_4_change_closes_the_old_account(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        loss.change_card(
            uow, world.rt, actor=_outlet(world), card_id=card.id, reason="surface_damaged"
        )
    assert _account(world, card).state == "closed"


def test_d_2_unclaimed_cards_destroyed_close_their_accounts(
    world: World, bank_updates: list[str]
) -> None:
    cards = world.cards(3, CardState.AT_OUTLET)
    world.advance(days=181)
    bank_updates.clear()
    assert sweep(world.rt).counts["unclaimed_destroyed"] == 3
    assert len(bank_updates) == 1
    assert {_account(world, c).state for c in cards} == {"closed"}


def test_v_5_auto_loss_leaves_the_account_and_financial_activation_lifts_it(
    world: World,
) -> None:
    card = world.card(CardState.RECEIVED)
    world.advance(days=301)
    assert sweep(world.rt).counts["auto_reported_lost"] == 1
    assert world.reload(card).state == CardState.LOST_AUTO
    assert _account(world, card).state == "issued"  # nothing to freeze: never activated
    _activate(world, card)
    assert world.reload(card).financial_activated_at is not None
    with world.rt.uow() as uow:
        loss.cancel_loss_report(uow, world.rt, actor=_outlet(world), card_id=card.id)
    assert world.reload(card).state == CardState.RECEIVED
    assert _account(world, card).state == "active"


def test_c_1_the_bank_records_an_outlet_s_act_in_its_own_journal_and_tells_partners(
    world: World,
) -> None:
    """V-1 at an outlet: the bank's journal names the outlet, its staff and channel; the
    center's audit trail holds nothing of it, its partner event comes from the message."""
    card = world.card(CardState.RECEIVED)
    outlet = _outlet(world, card.bank_code)
    change = _activate(world, card, actor=outlet)
    assert change.event is not None
    event = change.event
    assert (event.action, event.from_state, event.to_state) == ("activate", "issued", "active")
    assert (event.bank_code, event.actor_org_id, event.actor_staff_id, event.channel) == (
        card.bank_code,
        outlet.org_id,
        outlet.staff_id,
        "outlet",
    )
    assert event.source == outlet.source
    with world.rt.uow() as uow:
        s = uow.session
        audited = s.scalars(
            select(AuditRecord.action).where(AuditRecord.subject_type == "bank_account")
        ).all()
        staged = s.scalars(
            select(OutboxEvent).where(
                OutboxEvent.type == "bank_account.activated",
                OutboxEvent.subject_id == change.account.id,
            )
        ).one()
    assert audited == []
    assert (staged.bank_code, staged.actor_org_id) == (card.bank_code, outlet.org_id)
    assert staged.detail["event_id"] == event.id
