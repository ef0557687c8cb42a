"""``Idempotency-Key`` for POSTs that change a card's state (Stripe-style).

The same key and body replay the first answer (success or refusal); the same key
with another body is refused with ``idempotency_key_reused``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sscard.access.model import Actor
from sscard.api.deps import CurrentActor, RuntimeDep
from sscard.api.errors import PROBLEM
from sscard.core.errors import DomainError
from sscard.core.keys import load_key
from sscard.db import idempotency
from sscard.db.engine import UnitOfWork
from sscard.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@cache
def _fingerprint_key() -> bytes:
    return load_key("requests")


def once(
    rt: Runtime,
    actor: Actor,
    request: Request,
    key: str | None,
    body: BaseModel | None,
    act: Callable[[], M],
    *,
    status: int = 200,
) -> M | JSONResponse:
    """Run ``act`` once per (staff member, key); replay its answer on retries."""
    if key is None or actor.staff_id is None:
        return act()
    payload = body.model_dump_json() if body is not None else ""
    # Keyed: a body may hold a six-digit password, which a plain hash would give away.
    fingerprint = hmac.new(
        _fingerprint_key(),
        f"{request.method} {request.url.path}\n{payload}".encode(),
        hashlib.sha256,
    ).hexdigest()
    factory = rt.session_factory
    earlier = idempotency.claim(
        factory, staff_id=actor.staff_id, key=key, fingerprint=fingerprint, now=rt.now()
    )
    if earlier is not None:
        media = PROBLEM if (earlier.status or 200) >= 400 else "application/json"
        return JSONResponse(
            earlier.response,
            status_code=earlier.status or 200,
            media_type=media,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        result = act()
    except DomainError as exc:
        idempotency.finish(
            factory, staff_id=actor.staff_id, key=key, status=exc.status, response=exc.as_problem()
        )
        raise
    except Exception:
        idempotency.release(factory, staff_id=actor.staff_id, key=key)
        raise
    idempotency.finish(
        factory,
        staff_id=actor.staff_id,
        key=key,
        status=status,
        response=result.model_dump(mode="json"),
    )
    return result


@dataclass(frozen=True)
class StateChangeCall:
    """What a state-changing route needs: runtime, actor, and its idempotency key."""

    rt: Runtime
    actor: Actor
    request: Request
    key: str | None

    def run(
        self, body: BaseModel | None, act: Callable[[UnitOfWork], M], *, status: int = 200
    ) -> M | JSONResponse:
        """``act`` in one unit of work, replayed rather than repeated for a reused key."""

        def in_transaction() -> M:
            with self.rt.uow() as uow:
                return act(uow)

        return once(
            self.rt, self.actor, self.request, self.key, body, in_transaction, status=status
        )


def state_change_call(
    request: Request, rt: RuntimeDep, actor: CurrentActor, key: IdempotencyKey = None
) -> StateChangeCall:
    return StateChangeCall(rt=rt, actor=actor, request=request, key=key)


StateChange = Annotated[StateChangeCall, Depends(state_change_call)]
