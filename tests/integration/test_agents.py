"""A-5: acts done by an agent record who they are and what they showed; acts policy
reserves for the person in person are refused for agents, with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from sscard.access.model import Agent, AgentDocument
from sscard.accounts import passwords
from sscard.applications import service as applications
from sscard.audit.tables import AuditRecord
from sscard.bank import service as bank
from sscard.cards import loss
from sscard.cards import service as cards
from sscard.cards.model import CardState
from sscard.cards.tables import Card, CardTransition
from sscard.core.errors import PolicyRefused
from sscard.register.model import OrgKind
from sscard.register.tables import Person
from tests.factories import World, next_id_number

K = OrgKind
AGENT_ID = next_id_number()


def agent(document: AgentDocument = AgentDocument.POWER_OF_ATTORNEY) -> Agent:
    return Agent(name="李代理", id_number=AGENT_ID, document=document, document_ref="WT-2026-001")


MASKED_AGENT = {
    "name": "李代理",
    "id_number": AGENT_ID[:4] + "*" * 10 + AGENT_ID[-4:],
    "document": "power_of_attorney",
    "document_ref": "WT-2026-001",
}


def last_transition(world: World, card_id: int) -> CardTransition:
    with world.rt.uow() as uow:
        row = uow.session.scalar(
            select(CardTransition)
            .where(CardTransition.card_id == card_id)
            .order_by(CardTransition.id.desc())
        )
        assert row is not None
        return row


def audits(world: World, action: str) -> list[AuditRecord]:
    with world.rt.uow() as uow:
        return list(uow.session.scalars(select(AuditRecord).where(AuditRecord.action == action)))


def holder_number(world: World, card: Card) -> str:
    with world.rt.uow() as uow:
        return uow.session.get_one(Person, card.person_id).id_number


def test_a5_pickup_by_agent_records_the_agent_in_transition_and_audit(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    outlet = world.actor(K.OUTLET)
    with world.rt.uow() as uow:
        cards.pickup(uow, world.rt, actor=outlet, card_id=card.id, by="holder", agent=agent())
    assert last_transition(world, card.id).agent == MASKED_AGENT
    (entry,) = [a for a in audits(world, "card.pickup_by_holder") if a.subject_id == card.id]
    assert entry.detail["agent"] == MASKED_AGENT
    assert AGENT_ID not in str(entry.detail)


def test_a5_pickup_by_agent_needs_a_power_of_attorney(world: World) -> None:
    card = world.card(CardState.AT_OUTLET)
    with world.rt.uow() as uow, pytest.raises(PolicyRefused) as refused:
        cards.pickup(
            uow,
            world.rt,
            actor=world.actor(K.OUTLET),
            card_id=card.id,
            by="holder",
            agent=agent(AgentDocument.PRINCIPAL_ID),
        )
    assert refused.value.extra["reason"] == "missing_document"
    assert world.reload(card).state == CardState.AT_OUTLET


def _in_person_acts(world: World) -> list[tuple[str, CardState, Callable[[Any, Card], Any]]]:
    rt, outlet = world.rt, world.actor(K.OUTLET)
    return [
        (
            "activation",
            CardState.RECEIVED,
            lambda uow, c: cards.activate(
                uow, rt, actor=outlet, card_id=c.id, channel="outlet", agent=agent()
            ),
        ),
        (
            "oral loss report",
            CardState.ACTIVE,
            lambda uow, c: loss.report_loss_oral(
                uow, rt, actor=outlet, card_id=c.id, channel="bank_phone", agent=agent()
            ),
        ),
        (
            "written loss report",
            CardState.ACTIVE,
            lambda uow, c: loss.report_loss_written(
                uow, rt, actor=outlet, card_id=c.id, agent=agent()
            ),
        ),
        (
            "loss cancellation",
            CardState.LOST_ORAL,
            lambda uow, c: loss.cancel_loss_report(
                uow, rt, actor=outlet, card_id=c.id, agent=agent()
            ),
        ),
        (
            "replacement",
            CardState.LOST_WRITTEN,
            lambda uow, c: loss.replace_card(uow, rt, actor=outlet, card_id=c.id, agent=agent()),
        ),
        (
            "change",
            CardState.ACTIVE,
            lambda uow, c: loss.change_card(
                uow, rt, actor=outlet, card_id=c.id, reason="chip_damaged", agent=agent()
            ),
        ),
        (
            "consumption password reset",
            CardState.ACTIVE,
            lambda uow, c: passwords.reset(
                uow,
                rt,
                actor=outlet,
                card_number=c.card_number,
                id_number=holder_number(world, c),
                new_password="582914",
                agent=agent(),
            ),
        ),
        (
            "financial activation",
            CardState.RECEIVED,
            lambda uow, c: bank.activate_financial(
                uow,
                rt,
                actor=outlet,
                bank_card_number=c.bank_card_number,
                id_number=holder_number(world, c),
                financial_password="582914",
                agent=agent(),
            ),
        ),
        (
            "financial password reset",
            CardState.ACTIVE,
            lambda uow, c: bank.reset_financial_password(
                uow,
                rt,
                actor=outlet,
                bank_card_number=c.bank_card_number,
                id_number=holder_number(world, c),
                new_password="582914",
                agent=agent(),
            ),
        ),
    ]


def test_a5_dongguan_refuses_agents_for_every_act_it_reserves_for_the_person(
    world: World,
) -> None:
    for what, state, act in _in_person_acts(world):
        card = world.card(state)
        with world.rt.uow() as uow, pytest.raises(PolicyRefused) as refused:
            act(uow, card)
        assert refused.value.extra["reason"] == "in_person_only", what
        assert "A-5" in refused.value.detail, what
        assert world.reload(card).state == state, what


@pytest.mark.parametrize("policy_name", ["henan"])
def test_a5_henan_refuses_agents_for_password_resets_only(world: World) -> None:
    allowed = {"consumption password reset", "financial password reset"}
    for what, state, act in _in_person_acts(world):
        if what not in allowed:
            continue
        card = world.card(state)
        with world.rt.uow() as uow, pytest.raises(PolicyRefused) as refused:
            act(uow, card)
        assert refused.value.extra["reason"] == "in_person_only", what


@pytest.mark.parametrize("policy_name", ["henan"])
def test_a5_henan_loss_report_by_agent_records_the_agent(world: World) -> None:
    card = world.card(CardState.ACTIVE)
    with world.rt.uow() as uow:
        loss.report_loss_written(
            uow, world.rt, actor=world.actor(K.OUTLET), card_id=card.id, agent=agent()
        )
    assert last_transition(world, card.id).agent == MASKED_AGENT
    entry = [a for a in audits(world, "card.report_lost_written") if a.subject_id == card.id]
    assert entry
    assert entry[0].detail["agent"] == MASKED_AGENT


def test_a5_an_individuals_agent_returns_the_form_with_the_principals_id(world: World) -> None:
    person = world.person()
    sp = world.actor(K.SERVICE_POINT)
    with world.rt.uow() as uow:
        app = applications.issue_individual(
            uow, world.rt, actor=sp, person_id=person.id, bank_code="ICBC"
        )
    with world.rt.uow() as uow, pytest.raises(PolicyRefused):
        applications.return_form(
            uow, world.rt, actor=sp, application_id=app.id, agent=agent()
        )  # a power of attorney is not the principal's ID
    with world.rt.uow() as uow:
        applications.return_form(
            uow,
            world.rt,
            actor=sp,
            application_id=app.id,
            agent=agent(AgentDocument.PRINCIPAL_ID),
        )
    (entry,) = [a for a in audits(world, "application.returned") if a.subject_id == app.id]
    assert entry.detail["agent"]["document"] == "principal_id"
    assert entry.detail["agent"]["id_number"] == MASKED_AGENT["id_number"]
