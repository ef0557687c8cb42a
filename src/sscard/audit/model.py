"""What an audit record is about: a state change, an inquiry, or a full disclosure."""

from __future__ import annotations

from enum import StrEnum


class AuditKind(StrEnum):
    """Every state change and every look at a person's record is audited."""

    CHANGE = "change"  # a state change (written in the change's own transaction)
    INQUIRY = "inquiry"  # someone read a person's record (the access log, Q-1 spirit)
    DISCLOSURE = "disclosure"  # a full, unmasked value was shown (S-1)
