"""The dashboard: server-rendered pages for operators, requesters and makers, live by SSE.

``register_dashboard`` adds the pages, ``/events`` and ``/assets`` to the hub's app.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.service import HubService
from fabnet.web.dashboard.context import EXTENSION, Dashboard, default_cache_dir
from fabnet.web.thumbnails import Thumbnails


def register_dashboard(
    app: Flask, service: HubService, artifacts: ArtifactStore, cache_dir: Path | None = None
) -> Dashboard:
    """Register the dashboard's blueprints on ``app``; thumbnails are cached in ``cache_dir``."""
    from fabnet.web.dashboard import jobs, library, maker, overview, tasks
    from fabnet.web.dashboard.render import assets
    from fabnet.web.events import events

    state = Dashboard(service, artifacts, Thumbnails(cache_dir or default_cache_dir()))
    app.extensions[EXTENSION] = state
    for bp in (assets, overview.bp, library.bp, jobs.bp, maker.bp, tasks.bp, events):
        app.register_blueprint(bp)
    return state


__all__ = ["register_dashboard"]
