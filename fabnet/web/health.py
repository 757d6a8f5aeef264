"""``/healthz`` and ``/readyz``: what a container health check or a load balancer asks, without a
log-in.

``/healthz`` (alive): 200 while the database answers, 503 when it does not; the broker is only
reported, since the hub queues commands and catches up when the broker comes back — restarting
the process would not bring the broker back.
``/readyz`` (ready for work): 200 only when the database answers and, in a process with a bus
client, that client is connected; else 503 with a JSON body naming what is down, so a load
balancer sends requests elsewhere meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fabnet.store.database import Database

log = logging.getLogger(__name__)


def _database_answers(db: Database) -> bool:
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: the database does not answer: %s", exc)
        return False
    return True


def make_health(db: Database, broker_connected: Callable[[], bool] | None) -> Blueprint:
    """The ``/healthz`` and ``/readyz`` blueprint over ``db``; ``broker_connected`` None means
    this process has no broker client (tests, tools, an api-only role): ``/healthz`` reports it
    ``disconnected`` and ``/readyz`` does not ask for it."""
    health = Blueprint("health", __name__)

    def broker_state() -> str:
        return "connected" if broker_connected and broker_connected() else "disconnected"

    @health.get("/healthz")
    def healthz() -> tuple[Response, int]:
        broker = broker_state()
        if not _database_answers(db):
            body = {"status": "unavailable", "database": "unreachable", "broker": broker}
            return jsonify(body), 503
        return jsonify({"status": "ok", "database": "ok", "broker": broker}), 200

    @health.get("/readyz")
    def readyz() -> tuple[Response, int]:
        body: dict[str, object] = {"database": "ok" if _database_answers(db) else "unreachable"}
        if broker_connected is not None:
            body["broker"] = broker_state()
        down = [part for part, state in body.items() if state != "ok" and state != "connected"]
        body = {"status": "unavailable" if down else "ready", "down": down, **body}
        return jsonify(body), 503 if down else 200

    return health
