"""Keyset pagination of a query by its id column (``?after=<cursor>&limit=<n>``)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from sscard.core.pagination import Page, check_limit, decode_cursor

M = TypeVar("M")


def page_by_id(
    session: Session,
    query: Select[M],
    id_column: InstrumentedAttribute[Any],
    *,
    after: str | None,
    limit: int,
) -> Page[M]:
    """The rows of ``query`` after the cursor, in id order, one page of ``limit``."""
    check_limit(limit)
    rows = list(
        session.scalars(
            query.where(id_column > decode_cursor(after)).order_by(id_column).limit(limit + 1)
        )
    )
    return Page.of(rows, limit, key=lambda row: int(getattr(row, id_column.key)))
