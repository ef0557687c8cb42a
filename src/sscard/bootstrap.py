"""Putting a service together: database, migrations, policy, runtime."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine

from sscard.core.clock import Clock, SystemClock
from sscard.core.policy import RegionPolicy
from sscard.core.protect import SIDES, keyrings
from sscard.db.engine import UnitOfWork, make_engine, reads_of, session_factory
from sscard.db.migrate import upgrade
from sscard.region.service import active_policy, install_policy
from sscard.runtime import Runtime
from sscard.wiring import wire

DEFAULT_POLICY = "dongguan"


@dataclass
class Service:
    engine: Engine
    runtime: Runtime


def prepare(
    url: str | None = None,
    *,
    policy: str | None = None,
    clock: Clock | None = None,
    migrate: bool = True,
) -> Service:
    """Open the database, migrate it, and settle the region policy.

    ``policy`` (or ``SSCARD_POLICY``) is checked and installed; without one the
    database's own policy is used, and a new database gets the dongguan preset.
    A bad policy file raises PolicyError before anything is changed, and missing or
    malformed data keys raise KeyUnavailable before the service starts (the migration
    asks for them earlier if it has stored values to seal).
    """
    wire()
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    factory = session_factory(engine)
    clock = clock or SystemClock()
    wanted = policy or os.environ.get("SSCARD_POLICY")
    with UnitOfWork(factory) as uow:
        current: RegionPolicy | None = active_policy(uow.session)
        if wanted or current is None:
            current = install_policy(uow.session, wanted or DEFAULT_POLICY, now=clock.now())
        uow.commit()
    for side in SIDES:
        keyrings(side)  # personal data at rest: fail now, not at the first sealed value
    runtime = Runtime(
        clock=clock,
        policy=current,
        session_factory=factory,
        read_session_factory=session_factory(reads_of(engine)),
    )
    return Service(engine=engine, runtime=runtime)
