"""The audit trail's hash chain: canonical bytes of an entry, its keyed hash, the checks.

Entries are chained in ``chain_seq`` order::

    entry_hash = HMAC-SHA256(audit key, prev_hash || canonical bytes of the entry)

``prev_hash`` is the previous entry's ``entry_hash`` (``GENESIS`` for seq 1), taken as
its 32 raw bytes. The canonical bytes are a compact JSON object with sorted keys over
every column of the entry except the chain's own two hashes: the time in UTC ISO-8601
with microseconds, the detail as JSON with sorted keys, and ``chain_seq`` itself, so
an entry cannot be moved to another place in the chain. The key makes the chain
tamper-evident: whoever can write to the database but lacks the key cannot compute a
consistent hash for a changed, removed or forged entry.

Pure: no database, no web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

KEY_NAME = "audit"  # SSCARD_AUDIT_KEY, or $SSCARD_KEY_DIR/audit.key
GENESIS = "0" * 64  # prev_hash of the first entry
FORMAT = 1  # version of the canonical form, part of every hash


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """What an entry's hash covers: every column but ``prev_hash`` and ``entry_hash``."""

    id: int
    occurred_at: datetime
    kind: str
    actor_staff_id: int | None
    actor_org_id: int | None
    actor_person_id: int | None
    source: str
    channel: str
    action: str
    subject_type: str
    subject_id: int | None
    person_id: int | None
    detail: dict[str, Any]
    chain_seq: int


def utc_iso(moment: datetime) -> str:
    """``moment`` in UTC, ISO-8601 with microseconds (aware datetimes only)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: an audit entry's time must be aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(entry: ChainEntry) -> bytes:
    """The entry as compact JSON with sorted keys (UTF-8): what its hash covers."""
    document = {
        "format": FORMAT,
        "id": entry.id,
        "occurred_at": utc_iso(entry.occurred_at),
        "kind": entry.kind,
        "actor_staff_id": entry.actor_staff_id,
        "actor_org_id": entry.actor_org_id,
        "actor_person_id": entry.actor_person_id,
        "source": entry.source,
        "channel": entry.channel,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "person_id": entry.person_id,
        "detail": entry.detail,
        "chain_seq": entry.chain_seq,
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _hash_bytes(value: str) -> bytes:
    if len(value) != 64:
        raise ValueError("a chain hash is 64 hex digits")
    return bytes.fromhex(value)


def entry_hash(key: bytes, prev_hash: str, entry: ChainEntry) -> str:
    """HMAC-SHA256 under the audit key of ``prev_hash || canonical bytes``, as hex."""
    message = _hash_bytes(prev_hash) + canonical_bytes(entry)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Sealed:
    """A link to seal: the seq, previous hash and hash an entry gets."""

    id: int
    chain_seq: int
    prev_hash: str
    entry_hash: str


def link(key: bytes, *, last_seq: int, last_hash: str, entries: list[ChainEntry]) -> list[Sealed]:
    """Chain ``entries`` (already given their seqs) after the head ``last_seq``/``last_hash``."""
    sealed: list[Sealed] = []
    prev = last_hash
    for offset, entry in enumerate(entries, start=1):
        if entry.chain_seq != last_seq + offset:
            raise ValueError("entries to seal must continue the chain without a gap")
        current = entry_hash(key, prev, entry)
        sealed.append(Sealed(entry.id, entry.chain_seq, prev, current))
        prev = current
    return sealed


class Problem(StrEnum):
    """How the chain can be broken at an entry."""

    HASH_MISMATCH = "hash_mismatch"  # the entry's columns no longer match its hash
    GAP = "gap"  # entries before this one are missing from the sequence
    PREV_MISMATCH = "prev_mismatch"  # its prev_hash is not the previous entry's hash
    HEAD_MISMATCH = "head_mismatch"  # the chain's head does not end where the entries do


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken entry and what failed (no id, time or action: the entry is missing)."""

    chain_seq: int
    id: int | None
    occurred_at: datetime | None
    action: str | None
    problem: Problem
    detail: str


def check_link(
    key: bytes,
    entry: ChainEntry,
    *,
    prev_hash: str | None,
    stored_hash: str | None,
    expected_seq: int,
    expected_prev: str | None,
) -> Break | None:
    """The break at ``entry`` if it does not continue the chain, else None.

    ``expected_prev`` is the previous entry's stored hash (None: that entry is missing).
    """

    def broken(problem: Problem, detail: str) -> Break:
        return Break(entry.chain_seq, entry.id, entry.occurred_at, entry.action, problem, detail)

    if entry.chain_seq != expected_seq:
        missing = (
            f"entry {expected_seq} is missing"
            if entry.chain_seq == expected_seq + 1
            else f"entries {expected_seq} to {entry.chain_seq - 1} are missing"
        )
        return broken(Problem.GAP, missing)
    if expected_prev is None:
        return broken(Problem.GAP, f"entry {expected_seq - 1} is missing")
    if prev_hash != expected_prev:
        previous = expected_seq - 1
        return broken(Problem.PREV_MISMATCH, f"its prev_hash is not entry {previous}'s hash")
    if stored_hash is None or prev_hash is None:
        return broken(Problem.HASH_MISMATCH, "it has a seq but no hash")
    try:
        computed = entry_hash(key, prev_hash, entry)
    except ValueError:
        return broken(Problem.HASH_MISMATCH, "its prev_hash is not a chain hash")
    if not hmac.compare_digest(computed, stored_hash):
        return broken(Problem.HASH_MISMATCH, "its columns no longer match its hash")
    return None
