"""Typed dependencies: the runtime, a read session, and the acting staff member."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.access.tables import Staff
from sscard.core.errors import Unauthenticated
from sscard.register.model import OrgKind
from sscard.register.service import hash_token
from sscard.register.tables import Organization
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
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send 'Authorization: Bearer <token>' with a staff member's token")
    with rt.uow() as uow:
        row = uow.session.execute(
            select(Staff, Organization)
            .join(Organization, Organization.id == Staff.org_id)
            .where(Staff.token_hash == hash_token(token.strip()))
        ).first()
        if row is None or not row[0].active:
            raise Unauthenticated("the bearer token is unknown or revoked")
        staff, org = row
        return Actor(
            staff_id=staff.id,
            org_id=org.id,
            org_kind=OrgKind(org.kind),
            org_code=org.code,
            bank_code=org.bank_code,
            name=staff.name,
            role=staff.role,
            source=client_address(request),
        )


def current_actor(request: Request, actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """The acting party, kept on the request so its answer is shaped for it (S-1)."""
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
