"""``/healthz``: what a container health check or a load balancer asks, without a log-in.

200 while the database answers, 503 when it does not; the broker is reported but does not fail
the check, since the hub queues commands and catches up when the broker comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fabnet.store.database import Database

log = logging.getLogger(__name__)


def make_health(db: Database, broker_connected: Callable[[], bool] | None) -> Blueprint:
    """The ``/healthz`` blueprint over ``db``; ``broker_connected`` None means this app has
    no broker client (tests, tools), reported as ``disconnected``."""
    health = Blueprint("health", __name__)

    @health.get("/healthz")
    def healthz() -> tuple[Response, int]:
        broker = "connected" if broker_connected and broker_connected() else "disconnected"
        try:
            with db.read() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("health check: the database does not answer: %s", exc)
            body = {"status": "unavailable", "database": "unreachable", "broker": broker}
            return jsonify(body), 503
        return jsonify({"status": "ok", "database": "ok", "broker": broker}), 200

    return health
