"""scope list indexes: a unit's people and cards, walked by id (S-1)

A unit administrator lists only their own unit's people and cards, by cursor
(``WHERE unit_org_id = :u AND id > :after ORDER BY id``): the single-column indexes
on ``unit_org_id`` become ``(unit_org_id, id)``, which also serve every lookup the
old ones did. A bank lists the people holding its cards: ``(bank_code, person_id)``
on cards serves that semi-join in person order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:34:38.574736
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cards_unit_id", "cards", ["unit_org_id", "id"], unique=False)
    op.drop_index("ix_cards_unit_org_id", table_name="cards")
    op.create_index("ix_persons_unit_id", "persons", ["unit_org_id", "id"], unique=False)
    op.drop_index("ix_persons_unit_org_id", table_name="persons")
    op.create_index("ix_cards_bank_person", "cards", ["bank_code", "person_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cards_bank_person", table_name="cards")
    op.create_index("ix_persons_unit_org_id", "persons", ["unit_org_id"], unique=False)
    op.drop_index("ix_persons_unit_id", table_name="persons")
    op.create_index("ix_cards_unit_org_id", "cards", ["unit_org_id"], unique=False)
    op.drop_index("ix_cards_unit_id", table_name="cards")
