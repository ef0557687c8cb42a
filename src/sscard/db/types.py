"""Sealed columns and their blind indexes (personal data at rest).

``EncryptedString`` seals on the way in and opens on the way out, for ORM and Core
alike, with the keyrings of ``sscard.core.protect``. A sealed column cannot be
compared in SQL (a random nonce makes every ciphertext different): lookups and
uniqueness go through its ``<column>_hash`` blind index column, which
``blind_index`` declares and fills on insert, and ``keep_blind_index`` keeps in step
when the ORM changes the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, String, TypeDecorator, bindparam, event
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import InstrumentedAttribute, MappedColumn, Session, mapped_column
from sqlalchemy.sql import ClauseElement, operators

from sscard.core.protect import BLIND_LENGTH, Side, keyrings, sealed_length
from sscard.db.statements import Prepared

_NULL_TESTS = {operators.is_, operators.is_not}


def _is_value(operand: Any) -> bool:
    """A Python value (not None, not a SQL expression) on the other side of an operator."""
    if isinstance(operand, list | tuple | set | frozenset):
        return any(_is_value(o) for o in operand)
    return operand is not None and not isinstance(operand, ClauseElement)


class EncryptedString(TypeDecorator[str]):
    """A string sealed with AES-256-GCM under ``side``'s data key, bound to ``context``."""

    impl = String
    cache_ok = True

    def __init__(
        self,
        max_chars: int,
        *,
        side: Side,
        context: str,
        index_kind: str | None = None,
        bytes_per_char: int = 1,
    ) -> None:
        super().__init__(sealed_length(max_chars, bytes_per_char=bytes_per_char))
        self.max_chars = max_chars
        self.side = side
        self.context = context
        self.index_kind = index_kind  # what its blind index hashes as, if it has one

    class comparator_factory(TypeDecorator.Comparator[str]):  # noqa: N801 - SQLAlchemy's name
        """Refuses comparing a sealed column with a value: it would never match."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
            if op not in _NULL_TESTS and any(_is_value(o) for o in other):
                raise TypeError(
                    f"{self.expr} is sealed: compare it through its blind index column "
                    "(<column>_hash), never in SQL"
                )
            return super().operate(op, *other, **kwargs)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyrings(self.side).data.seal(value, context=self.context)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyrings(self.side).data.open(value, context=self.context)


def blind(side: Side, kind: str, value: str) -> str:
    """The current blind index of ``value``."""
    return keyrings(side).index.blind(value, kind=kind)


def blinds_of(side: Side, kind: str, values: Iterable[str]) -> dict[str, str]:
    """Every configured blind index of each value, mapped back to the value (bulk lookups)."""
    ring = keyrings(side).index
    return {h: v for v in values for h in ring.blinds(v, kind=kind)}


def matches(column: Any, side: Side, kind: str, value: str) -> ColumnElement[bool]:
    """``column`` (a blind index column) matches ``value`` under any configured version."""
    found: ColumnElement[bool] = column.in_(keyrings(side).index.blinds(value, kind=kind))
    return found


class BlindLookup:
    """A prepared ``SELECT`` of rows whose blind index column matches a value under any
    configured key version: one compiled statement per number of versions."""

    def __init__(self, query: Select[Any], column: Any, *, side: Side, kind: str) -> None:
        self._query, self._column, self._side, self._kind = query, column, side, kind
        self._by_count: dict[int, Prepared] = {}

    def first(self, s: Session, value: str) -> Any:
        """The first matching row, or None."""
        blinds = keyrings(self._side).index.blinds(value, kind=self._kind)
        prepared = self._by_count.get(len(blinds))
        if prepared is None:
            names: list[Any] = [bindparam(f"blind_{i}") for i in range(len(blinds))]
            prepared = Prepared(self._query.where(self._column.in_(names)))
            self._by_count[len(blinds)] = prepared
        return prepared.first(s, {f"blind_{i}": b for i, b in enumerate(blinds)})


def blind_index(
    source: str, *, side: Side, kind: str, nullable: bool = False, unique: bool = True
) -> MappedColumn[Any]:
    """The blind index column beside ``source``, filled on every insert that gives it."""

    def fill(ctx: DefaultExecutionContext) -> str | None:
        params: dict[str, Any] = ctx.get_current_parameters()  # type: ignore[no-untyped-call]
        value = params.get(source)
        return None if value is None else blind(side, kind, value)

    return mapped_column(
        String(BLIND_LENGTH),
        default=fill,
        nullable=nullable,
        unique=unique or None,
        index=None if unique else True,
    )


def keep_blind_index(attribute: InstrumentedAttribute[Any], *, side: Side, kind: str) -> None:
    """Whenever the ORM sets ``attribute``, set its ``<name>_hash`` too."""
    target_name = f"{attribute.key}_hash"

    def on_set(target: Any, value: str | None, old: Any, initiator: Any) -> None:
        setattr(target, target_name, None if value is None else blind(side, kind, value))

    event.listen(attribute, "set", on_set)
