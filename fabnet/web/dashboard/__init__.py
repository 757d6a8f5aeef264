"""The dashboard: server-rendered pages for operators, requesters and makers, live by SSE.

``register_dashboard`` adds the pages, ``/events`` and ``/assets`` to the hub's app.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.service import HubService
from fabnet.store.listings import Listings
from fabnet.store.overview import OverviewReads
from fabnet.web.dashboard.context import EXTENSION, Dashboard, default_cache_dir
from fabnet.web.thumbnails import Thumbnails

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


def register_dashboard(
    app: Flask, service: HubService, artifacts: ArtifactStore, cache_dir: Path | None = None
) -> Dashboard:
    """Register the dashboard's blueprints on ``app``; thumbnails are cached in ``cache_dir``.

    Also answers 503 with ``Retry-After`` (not 500) on any route when no database connection
    came free within the pool's timeout."""
    from fabnet.federation import wire
    from fabnet.web.dashboard import credits, jobs, library, maker, overview, peers, tasks
    from fabnet.web.dashboard.network import shared_network
    from fabnet.web.dashboard.render import assets
    from fabnet.web.events import events

    db = service.store.db
    reads = OverviewReads(db)
    state = Dashboard(
        service,
        artifacts,
        Thumbnails(cache_dir or default_cache_dir()),
        Listings(db),
        reads,
        shared_network(reads),
    )
    app.extensions[EXTENSION] = state
    for bp in (assets, overview.bp, library.bp, jobs.bp, maker.bp, tasks.bp, credits.bp, peers.bp,
               events):  # fmt: skip
        app.register_blueprint(bp)
    # parts made at a peer hub (held by "peer:<hub>") and jobs a peer asked for ("peer:<hub>")
    app.jinja_env.globals["peer_of_machine"] = wire.peer_of_machine
    app.jinja_env.globals["peer_of_requester"] = wire.peer_of_requester
    app.register_error_handler(PoolTimeout, _busy)
    return state


def _busy(exc: PoolTimeout) -> tuple[Response, int]:
    log.warning("%s %s: no database connection free (%s)", request.method, request.path, exc)
    answer = jsonify({"error": "Busy", "message": "the hub is busy; try again in a second"})
    answer.headers["Retry-After"] = str(RETRY_AFTER_S)
    return answer, 503


__all__ = ["register_dashboard"]
