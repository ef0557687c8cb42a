"""Serving the API: one process, or several worker processes beside one job runner.

Python runs one thread of Python at a time in a process, so a server that is to use more
than one core runs several worker processes behind one listening socket (uvicorn's
supervisor, with its C HTTP parser and event loop). Each worker has its own database pool
and its own group-committed access log. The deadline sweeper and the webhook deliverer run
once, in the supervising process, not in every worker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from sscard.api.app import create_app
from sscard.bootstrap import Service, prepare
from sscard.db.engine import HeldSessions
from sscard.events.delivery import DeliveryThread
from sscard.jobs.sweeper import SweeperThread

log = logging.getLogger("sscard.serve")
# What the worker processes read their configuration from (set by ``serve`` before it
# starts them; spawned processes inherit the environment).
DATABASE_ENV = "SSCARD_DATABASE_URL"


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    workers: int
    sweep_interval: float
    delivery_interval: float
    demo: bool
    access_log: bool = False  # uvicorn's line per request (costs more than a card check)


def _uvicorn(target: FastAPI | str, options: Options, **extra: object) -> None:
    uvicorn.run(
        target,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=options.access_log,
        **extra,  # type: ignore[arg-type]
    )


def serve(svc: Service, options: Options) -> None:
    """Serve until stopped: in this process, or in ``options.workers`` processes."""
    if options.workers <= 1:
        svc.runtime.held = HeldSessions(svc.engine)
        app = create_app(
            svc.runtime,
            demo=options.demo,
            sweep_interval=options.sweep_interval,
            delivery_interval=options.delivery_interval,
            group_access_log=True,
        )
        _uvicorn(app, options)
        return
    if options.demo:
        raise ValueError("the demo moves one process's clock: serve it with one worker")
    os.environ[DATABASE_ENV] = svc.engine.url.render_as_string(hide_password=False)
    # The policy is installed (by this process); the workers read the database's own.
    os.environ.pop("SSCARD_POLICY", None)
    # Fewer malloc arenas per process: a worker's threads share them, memory stays flat.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    svc.engine.dispose()  # the workers open their own pools
    jobs = [
        SweeperThread(svc.runtime, options.sweep_interval) if options.sweep_interval > 0 else None,
        DeliveryThread(svc.runtime, options.delivery_interval)
        if options.delivery_interval > 0
        else None,
    ]
    for job in jobs:
        if job:
            job.start()
    try:
        _uvicorn("sscard.api.serving:worker_app", options, factory=True, workers=options.workers)
    finally:
        for job in jobs:
            if job:
                job.stop()


def worker_app() -> FastAPI:
    """The app of one worker process (its configuration comes from the environment)."""
    svc = prepare(os.environ.get(DATABASE_ENV), migrate=False)
    svc.runtime.held = HeldSessions(svc.engine)
    return create_app(svc.runtime, sweep_interval=0, delivery_interval=0, group_access_log=True)
