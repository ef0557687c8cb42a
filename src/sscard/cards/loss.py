"""Use cases: loss reports, cancellation, replacement and change (L-*, R-*, F-*)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import (
    ORAL_LOSS_CHANNEL_OF,
    Actor,
    Agent,
    check_agent,
    require,
    require_scope,
)
from sscard.access.scoping import record_of_card, record_of_shown_card, shown_number
from sscard.applications.model import ApplicationKind
from sscard.applications.service import new_accepted_application
from sscard.applications.tables import ChangeRequest
from sscard.cards.model import (
    Action,
    CardState,
    ChangeReason,
    change_fee,
    loss_report_fee,
    oral_loss_lapses_at,
    replacement_fee,
)
from sscard.cards.service import Moved, charge_fee, order_card
from sscard.cards.tables import Card, CardTransition, Fee
from sscard.cards.transitions import load_card, move
from sscard.core.errors import Forbidden, InvalidInput, PolicyRefused
from sscard.core.policy import AgentAct, Channel
from sscard.db.counters import reserve
from sscard.db.engine import UnitOfWork
from sscard.register.model import OrgKind
from sscard.register.service import get_person, org_by_code
from sscard.register.tables import Person
from sscard.runtime import Runtime


def report_loss_oral(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    channel: str,
    agent: Agent | None = None,
    card_number: str | None = None,
) -> Moved:
    """L-1: a temporary oral report by phone or online banking; lapses after 5 days.

    12333 takes the report for the card the caller names: its ``card_number`` (S-1).
    """
    scope = require(actor, "cards.loss_oral")
    try:
        chosen = Channel(channel)
    except ValueError:
        raise InvalidInput(f"'{channel}' is not a channel", field="channel") from None
    if chosen not in rt.policy.loss.oral_channels:
        raise PolicyRefused(
            f"{rt.policy.region.name_en} takes oral loss reports through: "
            + ", ".join(rt.policy.loss.oral_channels),
            field="channel",
            reason="channel_not_allowed",
        )
    if chosen not in ORAL_LOSS_CHANNEL_OF.get(actor.org_kind, frozenset()):
        raise Forbidden(f"a {actor.org_kind.value} does not take reports through '{chosen}'")
    check_agent(rt.policy, AgentAct.LOSS_REPORT, agent)
    s = uow.session
    shown = shown_number(card_number, scope=scope, act="reports lost")
    card = load_card(s, card_id)
    require_scope(actor, "cards.loss_oral", record_of_shown_card(card, shown))
    now = rt.now()
    t = move(
        s,
        card,
        Action.REPORT_LOST_ORAL,
        rt=rt,
        actor=actor,
        at=now,
        channel=chosen,
        agent=agent,
    )
    card.loss_reported_at = now
    card.oral_loss_lapses_at = oral_loss_lapses_at(now, rt.policy)
    uow.commit()
    return Moved(card, [t])


def report_loss_written(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    agent: Agent | None = None,
) -> tuple[Moved, Fee]:
    """L-2: a written report at an outlet with ID, effective at once; the card is frozen."""
    require(actor, "cards.loss_written")
    check_agent(rt.policy, AgentAct.LOSS_REPORT, agent)
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.loss_written", record_of_card(card))
    now = rt.now()
    t = move(
        s,
        card,
        Action.REPORT_LOST_WRITTEN,
        rt=rt,
        actor=actor,
        at=now,
        channel=Channel.OUTLET,
        agent=agent,
    )
    number = reserve(s, "written_loss_report")
    card.written_report_no = f"GS{rt.policy.region.code}{number:010d}"
    card.loss_reported_at = now
    card.oral_loss_lapses_at = None
    fee = charge_fee(s, rt, card, loss_report_fee(rt.policy), actor=actor, application_id=None)
    uow.commit()
    return Moved(card, [t]), fee


def cancel_loss_report(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    written_report_no: str | None = None,
    agent: Agent | None = None,
) -> Moved:
    """L-3, V-5: cancel a loss report before replacement; the card resumes."""
    require(actor, "cards.cancel_loss")
    check_agent(rt.policy, AgentAct.CANCEL_LOSS_REPORT, agent)
    s = uow.session
    card = load_card(s, card_id)
    require_scope(actor, "cards.cancel_loss", record_of_card(card))
    if card.state == CardState.LOST_WRITTEN and (
        (written_report_no or "").strip() != card.written_report_no
    ):
        raise InvalidInput(
            "cancelling a written loss report needs the written report form: "
            "written_report_no is missing or does not match (L-3)",
            field="written_report_no",
        )
    if card.state == CardState.LOST_AUTO and card.financial_activated_at is None:
        raise PolicyRefused(
            "this card was reported lost because its financial application was not activated "
            "in time: activate it at the bank first, then cancel (V-5)",
            reason="financial_not_activated",
        )
    t = move(
        s,
        card,
        Action.CANCEL_LOSS_REPORT,
        rt=rt,
        actor=actor,
        at=rt.now(),
        channel=Channel.OUTLET,
        agent=agent,
    )
    uow.commit()
    return Moved(card, [t])


@dataclass(frozen=True)
class Reissued:
    """A replacement or change: the old card's move, the new card and the fee."""

    old: Moved
    new_card: Card
    fee: Fee


def _reissue(
    s: Session,
    rt: Runtime,
    old: Card,
    *,
    actor: Actor,
    kind: ApplicationKind,
    photo: dict[str, object] | None = None,
) -> tuple[Card, int]:
    person = s.get(Person, old.person_id)
    assert person is not None
    app = new_accepted_application(
        s,
        rt,
        person,
        kind=kind,
        bank_code=old.bank_code,
        actor=actor,
        replaces_card_id=old.id,
        photo=photo,
    )
    new = order_card(s, rt, app, actor=actor, unit_org_id=None, reason_code=kind.value)
    old.replaced_by_card_id = new.id
    return new, app.id


def replace_card(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    agent: Agent | None = None,
) -> Reissued:
    """R-1, R-3: replace a card after a written loss report; the old card is dead for good."""
    require(actor, "cards.replace")
    check_agent(rt.policy, AgentAct.REPLACEMENT, agent)
    s = uow.session
    old = load_card(s, card_id)
    require_scope(actor, "cards.replace", record_of_card(old))
    if old.state == CardState.LOST_ORAL:
        raise PolicyRefused(
            "an oral loss report is temporary: report the loss in writing at the outlet "
            "before a replacement (R-1)",
            reason="written_report_required",
        )
    t = move(
        s,
        old,
        Action.REPLACE,
        rt=rt,
        actor=actor,
        at=rt.now(),
        channel=Channel.OUTLET,
        agent=agent,
    )
    new, app_id = _reissue(s, rt, old, actor=actor, kind=ApplicationKind.REPLACEMENT)
    fee = charge_fee(s, rt, new, replacement_fee(rt.policy), actor=actor, application_id=app_id)
    uow.commit()
    return Reissued(Moved(old, [t]), new, fee)


def change_card(
    uow: UnitOfWork,
    rt: Runtime,
    *,
    actor: Actor,
    card_id: int,
    reason: str,
    photo_receipt_no: str | None = None,
    studio_code: str | None = None,
    agent: Agent | None = None,
) -> Reissued:
    """R-4, F-2: change a damaged, outdated or faulty card; the old one is destroyed."""
    require(actor, "cards.change")
    check_agent(rt.policy, AgentAct.CHANGE, agent)
    try:
        why = ChangeReason(reason)
    except ValueError:
        raise InvalidInput(
            "reason must be one of " + ", ".join(r.value for r in ChangeReason), field="reason"
        ) from None
    s = uow.session
    old = load_card(s, card_id)
    require_scope(actor, "cards.change", record_of_card(old))
    photo: dict[str, object] | None = None
    if why is ChangeReason.PHOTO_CHANGED:
        if not (photo_receipt_no or "").strip() or not studio_code:
            raise InvalidInput(
                "a photo change needs the new photo receipt and studio (R-4)",
                field="photo_receipt_no",
            )
        studio = org_by_code(s, studio_code, kind=OrgKind.PHOTO_STUDIO)
        photo = {
            "source": "studio_receipt",
            "receipt_no": photo_receipt_no,
            "studio_org_id": studio.id,
        }
    request = None
    if why is ChangeReason.PERSONAL_DATA_CHANGED:
        request = s.scalar(
            select(ChangeRequest)
            .where(
                ChangeRequest.person_id == old.person_id,
                ChangeRequest.state == "approved",
                ChangeRequest.card_change_done.is_(False),
            )
            .order_by(ChangeRequest.id)
        )
        if request is None:
            raise PolicyRefused(
                "a change of name or ID number is first approved at the social insurance "
                "agency (ID-4): no approved change request is waiting for a card change",
                reason="no_approved_change_request",
            )
    decision = change_fee(rt.policy, why, valid_until=old.valid_until, today=rt.today())
    t = move(
        s,
        old,
        Action.CHANGE,
        rt=rt,
        actor=actor,
        at=rt.now(),
        channel=Channel.OUTLET,
        reason_code=f"change:{why.value}",
        agent=agent,
    )
    new, app_id = _reissue(s, rt, old, actor=actor, kind=ApplicationKind.CHANGE, photo=photo)
    if request is not None:
        request.card_change_done = True
    fee = charge_fee(s, rt, new, decision, actor=actor, application_id=app_id)
    uow.commit()
    return Reissued(Moved(old, [t]), new, fee)


def history(s: Session, card_id: int) -> list[CardTransition]:
    """A card's history is a query over its transition records."""
    load_card(s, card_id, lock=False)
    return list(
        s.scalars(
            select(CardTransition)
            .where(CardTransition.card_id == card_id)
            .order_by(CardTransition.id)
        )
    )


def person_of(s: Session, card: Card) -> Person:
    return get_person(s, card.person_id)
