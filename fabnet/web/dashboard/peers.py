"""``/peers`` (operators, issue 12): the peer hubs with their terms, link, capacity, work in
flight each way and credit balance; adding, pausing, resuming, removing and greeting a peer
through the same ``PeerService`` as ``/api/v1/peers``; the tasks sent out and the foreign
tasks made here, and the production each side counts, by hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, redirect, request
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from fabnet.errors import FabnetError, InvalidInput
from fabnet.federation.capacity import summary_from_json
from fabnet.federation.peers import PeerService, check_terms
from fabnet.federation.settlement import peer_balances
from fabnet.hub.economy.statements import credits_text
from fabnet.store.peer_work import InFlight, PeerWork
from fabnet.store.peers import Peer, PeerCapacities
from fabnet.web.api.federation import ADD, peer_service
from fabnet.web.auth import OPERATOR, require_login
from fabnet.web.charts import bar_chart
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.render import page_blueprint, render
from fabnet.web.http_status import status_for

bp = page_blueprint("peers")
API_EXTENSION = "fabnet_api_context"
TASKS_SHOWN = 50
ACTIONS = ("pause", "resume", "remove", "hello")


@dataclass(frozen=True)
class PeerLine:
    """One peer as the page shows it."""

    peer: Peer
    in_flight: InFlight
    balance_mc: int
    capacity_age_s: float | None  # None: it never advertised
    idle_machines: int | None


def _service() -> PeerService:
    return peer_service(current_app.extensions[API_EXTENSION])


@bp.get("/peers")
@require_login(OPERATOR)
def peers() -> str:
    return _page()


@bp.post("/peers")
@require_login(OPERATOR)
def add() -> tuple[str, int] | BaseResponse:
    """Add the peer the form describes; the page shows the error naming the bad field."""
    try:
        body = ADD.validate(_form_body())
        terms = check_terms(body["materials"], body["kinds"], body["max_in_flight"],
                            body["charges_credits"])  # fmt: skip
        _service().add(body["name"], body["url"], body["key"], terms)
    except FabnetError as exc:
        return _page(error=str(exc)), status_for(exc)
    return redirect("/peers", code=303)


@bp.post("/peers/<name>/<action>")
@require_login(OPERATOR)
def act(name: str, action: str) -> tuple[str, int] | BaseResponse:
    """Pause, resume, remove or say hello to peer ``name``."""
    if action not in ACTIONS:
        abort(404, description=f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    service = _service()
    try:
        getattr(service, action)(name)
    except FabnetError as exc:
        return _page(error=f"{action} {name}: {exc}"), status_for(exc)
    return redirect("/peers", code=303)


def _form_body() -> dict[str, Any]:
    """The add form as the API's JSON body: lists from comma-separated text and checkboxes."""
    form = request.form
    raw = form.get("max_in_flight", "").strip() or "10"
    if not raw.isdigit():
        raise InvalidInput(f"max_in_flight must be a whole number, got {raw!r:.40}")
    materials = [m.strip() for m in form.get("materials", "").split(",") if m.strip()]
    return {
        "name": form.get("name", "").strip(),
        "url": form.get("url", "").strip(),
        "key": form.get("key", "").strip(),
        "materials": materials,
        "kinds": form.getlist("kinds"),
        "max_in_flight": int(raw),
        "charges_credits": form.get("charges_credits") == "on",
    }


def _page(error: str | None = None) -> str:
    state = dashboard()
    store = state.service.store
    now = snap.now_utc()
    work = PeerWork(store.db)
    flight = work.in_flight()
    balances = peer_balances(store)
    capacities = {c.peer: c for c in PeerCapacities(store.db).list()}
    lines = []
    for peer in _service().list():
        stored = capacities.get(peer.name)
        age, idle = None, None
        if stored is not None:
            age = (now - stored.computed_at).total_seconds()
            idle = _idle(stored.summary)
        lines.append(PeerLine(peer, flight.get(peer.name, InFlight()),
                              balances.get(peer.name, 0), age, idle))  # fmt: skip
    made_at, made_for = work.made_at_peers(), work.made_for_peers()
    return render(
        "peers.html",
        lines=lines,
        error=error,
        sent=work.sent(TASKS_SHOWN),
        foreign=work.foreign(TASKS_SHOWN),
        money=credits_text,
        age_text=_age_text,
        made_at_svg=_chart(made_at, "Parts made at each peer hub for this one"),
        made_for_svg=_chart(made_for, "Parts made here for each peer hub"),
        made_at=made_at,
        made_for=made_for,
    )


def _idle(summary: dict[str, Any]) -> int | None:
    try:
        return summary_from_json(summary).idle_machines
    except InvalidInput:  # kept from an older fabnet: say nothing rather than fail the page
        return None


def _chart(totals: dict[str, Any], title: str) -> Markup:
    items = [(f"hub {hub}", float(t.parts)) for hub, t in sorted(totals.items())]
    return bar_chart(items, unit="parts", title=title)


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
