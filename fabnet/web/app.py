"""``create_app``: the hub's Flask application — auth, ``/api/v1``, artifacts — with
fabnet's error tree mapped to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as BaseResponse

from fabnet.config import FederationConfig
from fabnet.core.credits import Terms
from fabnet.errors import FabnetError, MeshError
from fabnet.hub.artifacts import ArtifactStore, check_live
from fabnet.hub.metrics import HubMetrics
from fabnet.hub.service import HubCommands, HubService, OfferAnswers
from fabnet.library.tolerances import MAX_UPLOAD_BYTES
from fabnet.store.counts import Counts
from fabnet.store.listings import Listings
from fabnet.web.api import PREFIX, ApiContext, BrokerSettings, make_api
from fabnet.web.api.federation import make_peer_endpoints
from fabnet.web.api.federation_handlers import peer_handlers
from fabnet.web.auth import init_auth
from fabnet.web.health import make_health
from fabnet.web.http_status import status_for
from fabnet.web.metrics import make_metrics, time_requests

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Fabnet-Token"


UPLOAD_FORM_MARGIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebSettings:
    """What the web layer needs beyond the service: where its key lives, the hub's public
    URL and broker details for machine registration, and the design library folder."""

    data_dir: Path | None = None
    hub_url: str = "http://127.0.0.1:5000"
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    library_dir: Path | None = None
    broker_connected: Callable[[], bool] | None = None  # for /healthz
    live_streams: int = 4  # live pages streaming at once; keep below the server's threads
    metrics: HubMetrics | None = None  # this process's figures for /metrics; None: a fresh one
    economy: Terms | None = None  # [economy] terms (issue 11); None: the defaults
    federation: FederationConfig | None = None  # [federation] (issue 12); None: not set up

    @classmethod
    def from_hub_config(cls, config: Any, hub_url: str) -> WebSettings:
        """From a ``fabnet.config.HubConfig``; agents' broker accounts as its [broker] says."""
        b = config.broker
        broker = BrokerSettings(
            b.url, b.username, b.password, b.password_file, accounts=b.accounts, ca_file=b.ca_file
        )
        return cls(
            data_dir=config.data_dir,
            hub_url=hub_url,
            broker=broker,
            live_streams=max(1, config.http_threads // 2),
            economy=config.economy,
            federation=config.federation,
        )


def create_app(
    service: HubService,
    artifacts: ArtifactStore,
    api_token: str,
    *,
    settings: WebSettings | None = None,
    dispatcher: HubCommands | None = None,
) -> Flask:
    """The hub's app: log-in pages, ``/api/v1`` (session or bearer token; ``api_token`` is the
    operator bootstrap token) and ``/artifacts`` (one-task tokens).

    ``dispatcher`` is the hub's commands to machines (a ``Dispatcher``, or an ``api`` process's
    ``ApiCommands``); without it offers cannot be accepted or declined (409).
    """
    settings = settings or WebSettings()
    app = Flask("fabnet")
    app.config["JSON_SORT_KEYS"] = False
    # refuse an oversized upload before it is spooled to disk (413); the multipart form adds
    # a few headers on top of the file
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + UPLOAD_FORM_MARGIN_BYTES
    init_auth(app, service.store.accounts, api_token, settings.data_dir, db=service.store.db)
    metrics = settings.metrics if settings.metrics is not None else HubMetrics()
    app.extensions["fabnet_metrics"] = metrics
    time_requests(app, metrics)
    ctx = ApiContext(
        service=service,
        listings=Listings(service.store.db),
        broker=settings.broker,
        hub_url=settings.hub_url,
        offers=OfferAnswers(dispatcher) if dispatcher else None,
        configurer=dispatcher,
        library_dir=settings.library_dir or service.designs.library_dir,
        economy_terms=settings.economy,
        federation=settings.federation,
    )
    blueprint, endpoints = make_api(ctx)
    app.register_blueprint(blueprint, url_prefix=PREFIX)
    app.register_blueprint(
        make_peer_endpoints(ctx, peer_handlers(ctx))
    )  # /federation/v1, signed by peer hubs
    app.extensions["fabnet_api_endpoints"] = endpoints
    app.extensions["fabnet_api_context"] = ctx
    # --- dashboard (pages, /events, /assets): owned by fabnet/web/dashboard ---
    from fabnet.web.dashboard import register_dashboard
    from fabnet.web.events import limit_live_streams

    cache = settings.data_dir / "dashboard-cache" if settings.data_dir else None
    register_dashboard(app, service, artifacts, cache)
    limit_live_streams(app, settings.live_streams)
    # --- end dashboard ---

    @app.get("/artifacts/<task_id>/<int:offer_no>")
    def artifact(task_id: str, offer_no: int) -> Response:
        token = request.headers.get(TOKEN_HEADER, "")
        path = artifacts.open_assignment(task_id, offer_no, token)
        check_live(service.store.tasks.get(task_id), offer_no)  # ended tasks: 404
        metrics.artifact_served(path.stat().st_size)
        return send_file(
            path, mimetype="text/x-gcode", as_attachment=True, download_name=f"{task_id}.gcode"
        )

    app.register_blueprint(make_health(service.store.db, settings.broker_connected))
    app.register_blueprint(make_metrics(Counts(service.store.db), metrics))  # operators only

    @app.errorhandler(FabnetError)
    def fabnet_error(exc: FabnetError) -> tuple[Response, int]:
        body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, MeshError):
            body["reason"] = exc.reason
        status = status_for(exc)
        if status == 500:
            log.error("unmapped error on %s: %s", request.path, exc)
        return jsonify(body), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> BaseResponse | tuple[Response, int]:
        if exc.code in (301, 302, 303, 307, 308):
            return exc.get_response()
        return jsonify({"error": exc.name, "message": exc.description}), exc.code or 500

    return app
