"""Cursor pagination (``?after=…&limit=…``)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.core.errors import InvalidInput
from sscard.core.pagination import MAX_LIMIT, Page, check_limit, decode_cursor, encode_cursor


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_cursor_round_trip(last_id: int) -> None:
    cursor = encode_cursor(last_id)
    assert "=" not in cursor
    assert decode_cursor(cursor) == last_id


@pytest.mark.parametrize("empty", [None, ""])
def test_no_cursor_starts_at_the_beginning(empty: str | None) -> None:
    assert decode_cursor(empty) == 0


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "not-a-cursor",
        "ü",
        b64(b"id:abc"),
        b64(b"id:"),
        b64(b"page:12"),
        b64(b"12"),
        b64(b"\xff\xfe:1"),
        "a",
    ],
)
def test_garbage_cursor_is_refused_on_field_after(cursor: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_cursor(cursor)
    assert info.value.field == "after"
    assert "'after' cursor is not one this service gave out" in info.value.detail
    assert info.value.status == 422


@pytest.mark.parametrize("limit", [1, 50, MAX_LIMIT])
def test_limit_in_range_is_kept(limit: int) -> None:
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(InvalidInput) as info:
        check_limit(limit)
    assert info.value.field == "limit"
    assert str(MAX_LIMIT) in info.value.detail


def test_page_with_more_rows_than_the_limit_has_a_next_cursor() -> None:
    rows = ["a", "b", "c"]
    ids = {"a": 5, "b": 17, "c": 30}
    page = Page.of(rows, limit=2, key=ids.__getitem__)  # the cursor is the last item's id
    assert list(page.items) == ["a", "b"]
    assert page.next is not None
    assert decode_cursor(page.next) == 17


def test_last_page_has_no_next_cursor() -> None:
    page = Page.of(["a", "b"], limit=2, key={"a": 5, "b": 17}.__getitem__)
    assert list(page.items) == ["a", "b"]
    assert page.next is None
