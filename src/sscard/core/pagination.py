"""Cursor pagination: ``?after=<cursor>&limit=<n>``, never offsets on big tables."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sscard.core.errors import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 500


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "the 'after' cursor is not one this service gave out; use 'next' from a previous page",
            field="after",
        ) from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next: str | None

    @classmethod
    def of(cls, rows: Sequence[T], limit: int, key: Callable[[T], int]) -> Page[T]:
        """A page from up to ``limit + 1`` rows: the extra row says a next page exists,
        whose cursor is the ``key`` of this page's last row."""
        items = rows[:limit]
        has_more = len(rows) > limit
        return cls(items=items, next=encode_cursor(key(items[-1])) if has_more else None)
