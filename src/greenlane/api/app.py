"""The node's ASGI app: both APIs, health, metrics and OpenAPI docs, with its background loops.

``create_app(ctx)`` serves one node. Its lifespan starts the background
loops (push delivery, registry sync, checkpoints, webhooks, and the pull
poller when the corridor file says this node pulls) in the one server
process that holds the loops' lock; tests that drive the loops by hand pass
``background=False``.
"""

from __future__ import annotations

import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Any, Protocol

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

import greenlane
from greenlane.api import agency, errors, node, subscriptions
from greenlane.exchange.checkpoints import CheckpointExchange
from greenlane.exchange.context import NodeContext
from greenlane.exchange.delivery import Worker, pending_count
from greenlane.exchange.pull import Poller
from greenlane.exchange.registry_sync import RegistrySync
from greenlane.exchange.webhooks import WebhookWorker


def _loops_lock(ctx: NodeContext) -> IO[bytes] | None:
    """An exclusive lock that says this process runs the node's background loops.

    With several server processes (``greenlane serve --workers N``) every one
    serves requests, but only the one holding this lock runs the delivery
    worker, poller, registry sync, checkpoints and webhooks; if it dies, the
    kernel releases the lock and the process that replaces it takes it.
    """
    path = ctx.settings.key_dir / f".{ctx.node_id}.loops.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def from_environment() -> FastAPI:
    """The app for one of several server processes: the node named by the environment.

    ``greenlane serve --workers N`` sets GREENLANE_CORRIDOR_FILE, GREENLANE_NODE_ID
    and GREENLANE_SETTINGS_FILE before uvicorn starts the processes.
    """
    from greenlane.corridor.agreement import load_corridor
    from greenlane.exchange.context import build_context
    from greenlane.settings import load_settings

    settings = load_settings()
    if settings.corridor_file is None or settings.node_id is None:
        raise RuntimeError("GREENLANE_CORRIDOR_FILE and GREENLANE_NODE_ID must be set")
    corridor = load_corridor(settings.corridor_file)
    return create_app(build_context(settings, corridor, settings.node_id))


class _Loop(Protocol):
    def stop(self, timeout: float = ...) -> None: ...


def create_app(ctx: NodeContext, *, background: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops: list[_Loop] = []
        lock = _loops_lock(ctx) if background else None
        if lock is not None:
            loops.append(Worker(ctx).start())
            loops.append(RegistrySync(ctx).start())
            loops.append(CheckpointExchange(ctx).start())
            loops.append(WebhookWorker(ctx).start())
            if ctx.entry.delivery == "pull":
                loops.append(Poller(ctx).start())
        try:
            yield
        finally:
            for loop in loops:
                await run_in_threadpool(loop.stop)
            if lock is not None:
                lock.close()

    app = FastAPI(
        title=f"greenlane node {ctx.node_id}",
        version=greenlane.__version__,
        summary="Signed, receipted exchange of SPS certificates between corridor nodes",
        lifespan=lifespan,
    )
    app.state.node = ctx
    ctx.metrics.watch_queue(lambda: pending_count(ctx))
    errors.install(app)
    app.include_router(node.router)
    app.include_router(agency.router)
    app.include_router(subscriptions.router)

    @app.get("/health", tags=["operations"], summary="Liveness and database reachability")
    async def health() -> dict[str, Any]:
        def probe() -> None:
            with ctx.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        await run_in_threadpool(probe)
        return {"status": "ok", "node": ctx.node_id, "country": ctx.country}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        data = await run_in_threadpool(generate_latest, ctx.metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return app
