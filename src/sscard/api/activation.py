"""V-2: an outlet activates and sets both passwords in one transaction.

The entry point composes the two sides, each through its own service: the social
security side stores the consumption password, the bank side activates the
financial application with its own password (which sends the center its V-1
message). Neither side reads the other's data.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.accounts import passwords
from sscard.bank import service as bank
from sscard.cards.tables import Card
from sscard.core.errors import InvalidInput
from sscard.runtime import Runtime

Hook = Callable[[Session, Card], None]


def activation_hooks(
    rt: Runtime,
    actor: Actor,
    *,
    medical_password: str | None,
    financial_password: str | None,
    id_number: str | None,
) -> Hook:
    """What runs with an activation, in its transaction, once the card is active.

    V-2: the card is usable only with its consumption password, so an activation
    without one is refused (after the card's own checks, so a refused move still
    says why the card cannot move).
    """
    hooks: list[Hook] = []
    if medical_password is None:

        def missing(s: Session, card: Card) -> None:
            raise InvalidInput(
                "the consumption password is set at activation (V-2): send medical_password, "
                "six digits chosen by the holder",
                field="medical_password",
            )

        hooks.append(missing)
    else:
        hooks.append(passwords.set_at_activation(rt, actor, medical_password))
    if financial_password is not None:
        if not id_number:
            raise InvalidInput(
                "the financial activation checks the holder's ID: send id_number with "
                "financial_password",
                field="id_number",
            )

        def financial(s: Session, card: Card) -> None:
            if card.bank_card_number is None:
                raise InvalidInput("this card has no bank card number yet", field="card")
            bank.activate_financial_in(
                s,
                rt,
                actor=actor,
                bank_card_number=card.bank_card_number,
                id_number=id_number,
                financial_password=financial_password,
            )

        hooks.append(financial)

    def run_all(s: Session, card: Card) -> None:
        for hook in hooks:
            hook(s, card)

    return run_all
