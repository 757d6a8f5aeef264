"""``/events``: server-sent events, one JSON snapshot about every second, for the live pages.

A snapshot holds task counts, network totals, the machines the user may see, the job named by
``?job=`` (if the user may see it) and, for operators on ``?view=overview``, the overview's
charts as SVG. The network-wide part is computed at most once per interval for all clients.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, request
from markupsafe import Markup

from fabnet.errors import NotFound
from fabnet.store import Store
from fabnet.web.auth import User, current_user
from fabnet.web.charts import area_chart, bar_chart, machine_wall
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
STREAM_MAX_S = 300.0  # a stream ends after this; EventSource reconnects by itself
RETRY_MS = 1000

events = Blueprint("events", __name__)


class NetworkView:
    """The network-wide part of a snapshot, shared by every client for ``INTERVAL_S``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._at = 0.0
        self._data: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() - self._at < INTERVAL_S * 0.9 and self._data:
                return self._data
            self._data = network_snapshot(self._store, snap.now_utc())
            self._at = time.monotonic()
            return self._data


def network_snapshot(store: Store, now: datetime) -> dict[str, Any]:
    """Counts, production and machines (everyone's: filter per user before sending)."""
    machines = store.catalog.list_machines()
    active = snap.active_tasks(store)
    counts = snap.task_counts(store)
    prod = snap.production(store, now)
    return {
        "t": now.isoformat(),
        "counts": counts,
        "queue": counts["queued"] + counts["offered"],
        "machine_counts": snap.machine_counts(machines),
        "totals": snap.totals_json(prod.total),
        "today": snap.totals_json(prod.today),
        "machines": snap.machines_json(machines, active),
        "charts": {
            "production": str(area_chart(prod.points, title="Grams by material", unit="g")),
            "wall": str(machine_wall(snap.wall_tiles(machines, active))),
            "materials": str(materials_chart(prod)),
        },
    }


def materials_chart(prod: snap.Production) -> Markup:
    """Parts done per material, most grams first."""
    ordered = sorted(prod.by_material.items(), key=lambda kv: -kv[1].grams)
    return bar_chart(
        [(k, float(t.parts)) for k, t in ordered], unit="parts", title="Parts by material"
    )


def user_snapshot(
    network: dict[str, Any], store: Store, user: User, job_id: str | None, view: str
) -> dict[str, Any]:
    """What ``user`` may see of ``network``, plus the job ``job_id`` when theirs."""
    out = {k: v for k, v in network.items() if k not in ("machines", "charts")}
    out["machines"] = {
        mid: m for mid, m in network["machines"].items() if user.can_manage_machine(mid)
    }
    if view == "overview" and user.is_operator:
        out["charts"] = network["charts"]
    if job_id:
        try:
            spec = store.jobs.get(job_id).spec
        except NotFound:
            return out
        if user.can_see_job(spec.requester):
            out["jobs"] = {job_id: snap.job_progress(store, job_id)}
    return out


_VIEWS: dict[int, NetworkView] = {}
_VIEWS_LOCK = threading.Lock()


def network_view(store: Store) -> NetworkView:
    with _VIEWS_LOCK:
        view = _VIEWS.get(id(store))
        if view is None:
            view = _VIEWS[id(store)] = NetworkView(store)
        return view


@events.get("/events")
def stream() -> Response:
    """The live stream; 401 without a logged-in user."""
    user = current_user()
    if user is None:
        abort(401, description="log in to follow live updates")
    store = dashboard().service.store
    shared = network_view(store)
    job_id = request.args.get("job") or None
    view = request.args.get("view", "")

    def generate() -> Iterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        end = time.monotonic() + STREAM_MAX_S
        while time.monotonic() < end:
            try:
                data = user_snapshot(shared.get(), store, user, job_id, view)
            except Exception:  # noqa: BLE001 - top of the stream loop: log, end the stream
                log.exception("live snapshot failed; ending the stream")
                return
            yield f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
            time.sleep(INTERVAL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)
