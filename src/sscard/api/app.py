"""The FastAPI application: thin routes over the services."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from sscard import __version__
from sscard.api import disclosure, errors
from sscard.api.fastlane import FastLane
from sscard.api.routes import (
    accounts,
    admin,
    applications,
    audit,
    auth,
    bank,
    cards,
    events,
    register,
    self_service,
)
from sscard.audit.access_log import InquiryLog
from sscard.events.delivery import DeliveryThread
from sscard.jobs.sweeper import SweeperThread
from sscard.runtime import Runtime
from sscard.wiring import wire

DESCRIPTION = """
sscard runs a region's social security cards (社会保障卡): the register, applications,
production and hand-out, activation, loss, replacement and change; and the issuing
bank's side: financial activation and the financial password (`/bank/...`).

Every request acts as a staff member, a partner system or a cardholder: send
`Authorization: Bearer <token>` with a session token (`POST /auth/sessions`,
`POST /self/sessions`), a partner credential (`<key_id>.<secret>`) or a staff
member's personal token.
Errors are RFC 9457 problem details with a stable `code`.
"""


# Static paths of the calls counters make all day long.
BUSIEST = frozenset({"/card-checks", "/settlements", "/medical-accounts/inquiries"})


def create_app(
    rt: Runtime,
    *,
    demo: bool = False,
    sweep_interval: float | None = None,
    delivery_interval: float | None = None,
    group_access_log: bool = False,
) -> FastAPI:
    """Build the app around a runtime; ``sweep_interval`` seconds starts the sweeper,
    ``delivery_interval`` seconds the webhook deliverer; ``group_access_log`` writes the
    access log from one thread for many requests at once (the server; not where every
    unit of work shares one connection, as in the tests)."""
    wire()
    interval = sweep_interval
    if interval is None:
        interval = float(os.environ.get("SSCARD_SWEEP_INTERVAL", "0") or 0)
    every = delivery_interval
    if every is None:
        every = float(os.environ.get("SSCARD_DELIVERY_INTERVAL", "0") or 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = SweeperThread(rt, interval) if interval > 0 else None
        # The demo's partners are on this machine: its deliveries may go to 127.0.0.1.
        deliverer = (
            DeliveryThread(rt, every, allow_loopback=True if demo else None) if every > 0 else None
        )
        for started in (thread, deliverer):
            if started:
                started.start()
        try:
            yield
        finally:
            for running in (thread, deliverer):
                if running:
                    running.stop()
            inquiries.stop()

    app = FastAPI(title="sscard", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = rt
    app.state.demo = demo
    inquiries = InquiryLog(rt, grouped=group_access_log)
    app.state.inquiries = inquiries
    # The counters' calls past the framework's request handling (inside the error
    # containment that errors.install adds around it).
    app.add_middleware(FastLane, fastapi=app)
    errors.install(app)
    # The routes go straight into the app's own list, the busiest first: a request is
    # matched against the list in order, and the counters' calls (card checks, payments,
    # Q-1 inquiries) should not walk ninety other routes to find theirs. (Mounting the
    # routers instead would add a walk through each of them to every request.)
    routes = [
        route
        for module in (
            accounts,
            cards,
            register,
            applications,
            bank,
            admin,
            audit,
            auth,
            events,
            self_service,
        )
        for route in module.router.routes
    ]
    routes.sort(key=lambda route: getattr(route, "path", "") not in BUSIEST)
    app.router.routes.extend(routes)
    disclosure.install(app)  # S-1: the documents say that answers are shaped per party

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the service answers and knows its region."""
        return {"status": "ok", "region": rt.policy.region.name_en}

    return app
