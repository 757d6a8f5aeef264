"""``create_app``: the hub's Flask application, with fabnet's error tree mapped to HTTP."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from fabnet.errors import Conflict, DeviceError, FabnetError, InvalidInput, NotFound
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.service import HubService
from fabnet.web.api import make_api

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[FabnetError], int], ...] = (
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (DeviceError, 502),
)
TOKEN_HEADER = "X-Fabnet-Token"


def create_app(service: HubService, artifacts: ArtifactStore, api_token: str) -> Flask:
    """The hub's app: ``/api/v1`` (bearer token) and ``/artifacts`` (one-task tokens)."""
    app = Flask("fabnet")
    app.config["JSON_SORT_KEYS"] = False
    app.register_blueprint(make_api(service, api_token), url_prefix="/api/v1")

    @app.get("/artifacts/<task_id>/<int:offer_no>")
    def artifact(task_id: str, offer_no: int) -> Response:
        token = request.headers.get(TOKEN_HEADER, "")
        path = artifacts.open_assignment(task_id, offer_no, token)
        return send_file(
            path, mimetype="text/x-gcode", as_attachment=True, download_name=f"{task_id}.gcode"
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True})

    @app.errorhandler(FabnetError)
    def fabnet_error(exc: FabnetError) -> tuple[Response, int]:
        for kind, status in STATUS_BY_ERROR:
            if isinstance(exc, kind):
                return jsonify({"error": type(exc).__name__, "message": str(exc)}), status
        log.error("unmapped error on %s: %s", request.path, exc)
        return jsonify({"error": type(exc).__name__, "message": str(exc)}), 500

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify({"error": exc.name, "message": exc.description}), exc.code or 500

    return app


def token_ok(presented: str, expected: str) -> bool:
    """Constant-time comparison of a presented bearer token with the expected one."""
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())
