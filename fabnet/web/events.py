"""``/events``: server-sent events, one JSON snapshot about every second, for the live pages.

A snapshot holds the shared network figures (task counts, totals; for operators on
``?view=overview`` the overview's charts as SVG), the user's own machines (an operator on
``?view=maker``: the first page of machines) and the job named by ``?job=`` if the user may see
it. The network part is computed at most once a second for every client; the per-user part is
a few bounded queries. No database connection is held between ticks.

Each open stream holds one of the server's threads, so only ``limit_live_streams`` of them run
at once: a page beyond that gets a stream that only says "retry later" and ends, and its
browser's EventSource comes back after ``BUSY_RETRY_MS`` (a 503 would end EventSource for
good). The API and agents' downloads thus always find a free thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request

from fabnet.errors import NotFound
from fabnet.web.auth import User, current_user
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import Dashboard, dashboard

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
STREAM_MAX_S = 300.0  # a stream ends after this; EventSource reconnects by itself
RETRY_MS = 1000
BUSY_RETRY_MS = 15_000  # when every stream slot is taken: come back this much later
SLOTS = "fabnet_live_stream_slots"
MACHINES_SENT = 200  # a maker's machines per snapshot, at most
OPERATOR_MACHINES_SENT = 50  # an operator on the maker page: its first page

events = Blueprint("events", __name__)


def limit_live_streams(app: Flask, streams: int) -> None:
    """At most ``streams`` live streams of ``app`` at once (see the module docstring)."""
    app.extensions[SLOTS] = threading.BoundedSemaphore(streams)


def user_snapshot(state: Dashboard, user: User, job_id: str | None, view: str) -> dict[str, Any]:
    """What ``user`` may see: the shared network figures, their machines, their job."""
    network = state.network.get().data
    out = {k: v for k, v in network.items() if k != "charts"}
    if view == "overview" and user.is_operator:
        out["charts"] = network["charts"]
    out["machines"] = _machines(state, user, view)
    if job_id:
        try:
            info = state.service.store.jobs.get(job_id)
        except NotFound:
            return out
        if user.can_see_job(info.spec.requester):
            out["jobs"] = {job_id: snap.job_progress(state.listings, job_id, info.state.value)}
    return out


def _machines(state: Dashboard, user: User, view: str) -> dict[str, dict[str, Any]]:
    """The user's makers' machines; for an operator without makers, the maker page's first
    page of machines on ``view=maker`` and none elsewhere (the wall is in the charts)."""
    if user.is_maker and user.maker_ids:
        makers: list[str] | None = sorted(user.maker_ids)
    elif user.is_operator and view == "maker":
        makers = None
    else:
        return {}
    limit = MACHINES_SENT if makers is not None else OPERATOR_MACHINES_SENT
    machines = state.listings.machines(makers, limit, 0)
    active = state.reads.leased_tasks([m.machine_id for m in machines])
    return snap.machines_json(machines, active)


@events.get("/events")
def stream() -> Response:
    """The live stream; 401 without a logged-in user."""
    user = current_user()
    if user is None:
        abort(401, description="log in to follow live updates")
    state = dashboard()
    job_id = request.args.get("job") or None
    view = request.args.get("view", "")

    slots: threading.BoundedSemaphore | None = current_app.extensions.get(SLOTS)

    def generate() -> Iterator[str]:
        if slots is not None and not slots.acquire(blocking=False):
            log.info("every live stream slot is taken; %s is asked to come back later", user.name)
            yield f"retry: {BUSY_RETRY_MS}\n\n"
            return
        try:
            yield f"retry: {RETRY_MS}\n\n"
            end = time.monotonic() + STREAM_MAX_S
            while time.monotonic() < end:
                try:
                    data = user_snapshot(state, user, job_id, view)
                except Exception:  # noqa: BLE001 - top of the stream loop: log, end the stream
                    log.exception("live snapshot failed; ending the stream")
                    return
                yield f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
                time.sleep(INTERVAL_S)
        finally:
            if slots is not None:
                slots.release()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)
