"""Gap-tolerant number blocks (form numbers, vouchers, report numbers).

One ``UPDATE ... RETURNING`` reserves a whole block, so a batch of 10 000 forms costs
one round trip, and two transactions never get the same number.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from sscard.db.base import Base


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


def reserve(session: Session, name: str, count: int = 1) -> int:
    """Reserve ``count`` consecutive numbers and return the first."""
    stmt = (
        update(Counter)
        .where(Counter.name == name)
        .values(value=Counter.value + count)
        .returning(Counter.value)
    )
    last = session.execute(stmt).scalar()
    if last is None:
        try:
            with session.begin_nested():
                session.execute(insert(Counter).values(name=name, value=0))
        except IntegrityError:
            pass
        last = session.execute(stmt).scalar_one()
    return int(last) - count + 1


def peek(session: Session, name: str) -> int:
    return int(session.scalar(select(Counter.value).where(Counter.name == name)) or 0)
