"""The audit chain's pure rules: canonical bytes, the keyed hash, and the link checks (S-1)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sscard.audit.chain import (
    GENESIS,
    ChainEntry,
    Problem,
    canonical_bytes,
    check_link,
    entry_hash,
    link,
)

KEY = bytes.fromhex("a7" * 32)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def entry(seq: int = 1, **changes: object) -> ChainEntry:
    base = ChainEntry(
        id=40 + seq,
        occurred_at=datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=SHANGHAI),
        kind="change",
        actor_staff_id=7,
        actor_org_id=3,
        actor_person_id=None,
        source="127.0.0.1",
        channel="outlet",
        action="card.activate",
        subject_type="card",
        subject_id=11,
        person_id=5,
        detail={"to": "active", "from": "received", "名": "陈"},
        chain_seq=seq,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_canonical_bytes_are_sorted_compact_json_with_the_time_in_utc() -> None:
    doc = json.loads(canonical_bytes(entry()))
    assert doc["occurred_at"] == "2026-03-02T01:00:00.123456+00:00"
    assert doc["detail"] == {"from": "received", "to": "active", "名": "陈"}
    assert list(doc) == sorted(doc)
    assert b" " not in canonical_bytes(entry())
    assert set(doc) == {
        "format", "id", "occurred_at", "kind", "actor_staff_id", "actor_org_id",
        "actor_person_id", "source", "channel", "action", "subject_type", "subject_id",
        "person_id", "detail", "chain_seq",
    }  # fmt: skip


def test_canonical_bytes_do_not_depend_on_the_detail_key_order_or_the_time_zone() -> None:
    one = entry(detail={"a": 1, "b": [1, 2]})
    other = entry(
        detail={"b": [1, 2], "a": 1},
        occurred_at=datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC),
    )
    assert canonical_bytes(one) == canonical_bytes(other)


def test_canonical_bytes_refuse_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        canonical_bytes(entry(occurred_at=datetime(2026, 3, 2, 9, 0)))  # noqa: DTZ001


def test_entry_hash_is_hmac_sha256_of_the_previous_hash_and_the_canonical_bytes() -> None:
    e = entry()
    expected = hmac.new(KEY, bytes(32) + canonical_bytes(e), hashlib.sha256).hexdigest()
    assert entry_hash(KEY, GENESIS, e) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"id": 99},
        {"occurred_at": datetime(2026, 3, 2, 9, 0, 0, 123457, tzinfo=SHANGHAI)},
        {"kind": "inquiry"},
        {"actor_staff_id": 8},
        {"actor_org_id": None},
        {"actor_person_id": 5},
        {"source": "10.0.0.1"},
        {"channel": "online"},
        {"action": "card.destroy"},
        {"subject_type": "person"},
        {"subject_id": 12},
        {"person_id": 6},
        {"detail": {"to": "active", "from": "received", "名": "李"}},
        {"chain_seq": 2},
    ],
)
def test_s1_every_column_of_an_entry_changes_its_hash(change: dict[str, object]) -> None:
    assert entry_hash(KEY, GENESIS, entry()) != entry_hash(KEY, GENESIS, replace(entry(), **change))  # type: ignore[arg-type]


def test_s1_the_hash_depends_on_the_key_and_the_previous_hash() -> None:
    e = entry()
    assert entry_hash(KEY, GENESIS, e) != entry_hash(b"\x01" * 32, GENESIS, e)
    assert entry_hash(KEY, GENESIS, e) != entry_hash(KEY, "f" * 64, e)


def test_link_chains_each_entry_on_the_previous_hash() -> None:
    entries = [entry(seq) for seq in (4, 5, 6)]
    sealed = link(KEY, last_seq=3, last_hash="ab" * 32, entries=entries)
    assert [s.chain_seq for s in sealed] == [4, 5, 6]
    assert sealed[0].prev_hash == "ab" * 32
    assert sealed[1].prev_hash == sealed[0].entry_hash
    assert sealed[2].entry_hash == entry_hash(KEY, sealed[1].entry_hash, entries[2])


def test_link_refuses_entries_that_leave_a_gap() -> None:
    with pytest.raises(ValueError, match="gap"):
        link(KEY, last_seq=3, last_hash=GENESIS, entries=[entry(5)])


def _check(e: ChainEntry, prev: str, stored: str | None, **kw: object) -> Problem | None:
    options: dict[str, object] = {"expected_seq": e.chain_seq, "expected_prev": prev} | kw
    found = check_link(key=KEY, entry=e, prev_hash=prev, stored_hash=stored, **options)  # type: ignore[arg-type]
    return found.problem if found else None


def test_s1_check_link_accepts_an_intact_entry_and_names_each_kind_of_break() -> None:
    e = entry(3)
    good = entry_hash(KEY, "cd" * 32, e)
    assert _check(e, "cd" * 32, good) is None
    assert _check(replace(e, action="card.destroy"), "cd" * 32, good) is Problem.HASH_MISMATCH
    assert _check(e, "cd" * 32, good, expected_seq=2) is Problem.GAP
    assert _check(e, "cd" * 32, good, expected_prev="ef" * 32) is Problem.PREV_MISMATCH
    assert _check(e, "cd" * 32, good, expected_prev=None) is Problem.GAP
    assert _check(e, "cd" * 32, None) is Problem.HASH_MISMATCH
    assert _check(e, "cd" * 32, entry_hash(b"\x02" * 32, "cd" * 32, e)) is Problem.HASH_MISMATCH


def test_a_gap_names_the_missing_seqs() -> None:
    found = check_link(
        KEY, entry(7), prev_hash=GENESIS, stored_hash=None, expected_seq=4, expected_prev=GENESIS
    )
    assert found is not None
    assert (found.chain_seq, found.id, found.action) == (7, 47, "card.activate")
    assert found.detail == "entries 4 to 6 are missing"
