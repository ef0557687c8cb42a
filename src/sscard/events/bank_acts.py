"""Partner events of the bank's acts, from the bank's ``BankAccountsChanged`` messages.

The bank records its acts in its own journal (C-1); the center hears of them only
through this message, and stages the ``bank_account.*`` partner events in the same
transaction, so an event commits or rolls back with the act.
"""

from __future__ import annotations

from sscard.events import outbox
from sscard.messages import BankAccountsChanged, Delivery

SUBJECT = "bank_account"  # the partner events' subject type (``bank_account.frozen``)


def on_bank_accounts_changed(delivery: Delivery, message: BankAccountsChanged) -> None:
    """Stage one partner event per act, in one INSERT (never commits)."""
    outbox.stage_many(
        delivery.session,
        (
            {
                "at": message.at,
                "action": f"{SUBJECT}.{act.action}",
                "subject_type": SUBJECT,
                "subject_id": act.account_id,
                "person_id": None,
                "actor_org_id": act.actor_org_id,
                "detail": act.detail,
            }
            for act in message.acts
        ),
    )
