"""Domain errors: each has a stable machine-readable code and an HTTP status.

Domain code raises these; the API renders them as RFC 9457 problem details and the
CLI prints them as one line. Nothing outside the entry points knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain can give."""

    code = "domain_error"
    status = 400
    title = "Request refused"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def as_problem(self) -> dict[str, Any]:
        """The error as an RFC 9457 problem document."""
        body: dict[str, Any] = {
            "type": f"https://sscard.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"
    title = "Invalid identifier"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"


class AlreadyExists(Conflict):
    code = "already_exists"
    title = "Already exists"


class ConcurrentUpdate(Conflict):
    code = "concurrent_update"
    title = "Changed by someone else"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "Not allowed in the current state"

    def __init__(
        self, what: str, current: str, action: str, allowed: Iterable[str], note: str = ""
    ) -> None:
        allowed_list = sorted(allowed)
        hint = ", ".join(allowed_list) if allowed_list else "none"
        super().__init__(
            f"{what} is '{current}': '{action}' is not possible; allowed next steps: {hint}"
            + (f". {note}" if note else ""),
            current_state=current,
            allowed=allowed_list,
        )


class PolicyRefused(DomainError):
    code = "refused_by_policy"
    status = 422
    title = "Refused by region policy"


class DeadlineNotReached(DomainError):
    code = "not_yet_due"
    status = 409
    title = "Not yet possible"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Not permitted"
