"""Typed dependencies: the runtime, a read session, and the acting staff member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from sscard.access.auth import authenticate
from sscard.access.model import Actor
from sscard.core.errors import Unauthenticated
from sscard.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_read_session(rt: RuntimeDep) -> Iterator[Session]:
    """A session for reads; it never commits."""
    with rt.uow() as uow:
        yield uow.session


ReadSession = Annotated[Session, Depends(get_read_session)]


def client_address(request: Request) -> str:
    """Where a request came from, for the audit trail."""
    return request.client.host if request.client else "unknown"


def get_actor(request: Request, rt: RuntimeDep) -> Actor:
    """The actor of a session, a partner credential or a personal access token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send 'Authorization: Bearer <token>' with a session token (POST /auth/sessions), "
            "a partner credential or a staff member's token"
        )
    found = authenticate(rt, bearer=token.strip(), source=client_address(request))
    request.state.authenticated = found
    return found.actor


def current_actor(request: Request, actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """The acting party, kept on the request so its answer is shaped for it (S-1)."""
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
