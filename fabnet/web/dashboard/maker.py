"""``/maker``: a maker's machines and current tasks, offers waiting for an answer, their
contribution over time, and registering a machine."""

from __future__ import annotations

from flask import abort, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.web.auth import MAKER, User, current_user, require_login
from fabnet.web.charts import area_chart, bar_chart
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.offers import decide_offer
from fabnet.web.dashboard.registering import Registered, profiles, register_from_form
from fabnet.web.dashboard.render import page_blueprint, page_number, render

bp = page_blueprint("maker")
OFFERS_SHOWN = 50
MACHINES_PER_PAGE = 50


def _maker_ids(user: User) -> list[str] | None:
    """The makers this page is about: the user's own; for an operator, every maker (None)."""
    if user.is_maker and user.maker_ids:
        return sorted(user.maker_ids)
    if user.is_operator:
        return None
    return []


@bp.get("/maker")
@require_login(MAKER)
def maker() -> str:
    user = current_user()
    assert user is not None
    return _page(user)


@bp.post("/maker/machines")
@require_login(MAKER)
def register() -> tuple[str, int]:
    """Register a machine; the page then shows its agent config (the password only once)."""
    user = current_user()
    assert user is not None
    try:
        done = register_from_form(user)
    except (InvalidInput, NotFound) as exc:
        return _page(user, error=str(exc)), 400
    except Conflict as exc:
        return _page(user, error=str(exc)), 409
    return _page(user, registered=done), 201


def _page(user: User, registered: Registered | None = None, error: str | None = None) -> str:
    state = dashboard()
    makers = _maker_ids(user)
    listings = state.listings
    page = page_number()
    first = (page - 1) * MACHINES_PER_PAGE
    machines = listings.machines(makers, MACHINES_PER_PAGE, first)
    machine_count = (
        first + len(machines)
        if 0 < len(machines) < MACHINES_PER_PAGE
        else listings.count_machines(makers)
    )
    offers = listings.waiting_offers(makers, OFFERS_SHOWN, 0)
    offer_count = len(offers) if len(offers) < OFFERS_SHOWN else listings.count_offers(makers)
    if makers is None:  # everyone's: the shared network figures have it
        prod = state.network.get().production
    else:
        prod = state.reads.production(
            snap.now_utc(), snap.SERIES_WINDOW, snap.SERIES_BUCKET, makers
        )
    ids = frozenset(m.machine_id for m in machines)
    holds = state.service.store.holds
    return render(
        "maker.html",
        live_view="maker",
        holds=holds.held(ids) if any(m.held for m in machines) else {},
        last_failures=holds.last_failures(ids),
        makers_label=_label(makers),
        machines=machines,
        machine_count=machine_count,
        page=page,
        per_page=MACHINES_PER_PAGE,
        pages=max(1, -(-machine_count // MACHINES_PER_PAGE)),
        active=state.reads.leased_tasks([m.machine_id for m in machines]),
        offers=offers,
        offer_count=offer_count,
        total=snap.totals_json(prod.total),
        contribution_svg=area_chart(prod.points, title="My grams by material", unit="g"),
        hours_svg=bar_chart(
            [(k, t.machine_hours) for k, t in sorted(prod.by_material.items())],
            unit="h",
            title="Machine hours by material",
        ),
        registered=registered,
        register_error=error,
        profiles=profiles(),
    )


def _label(makers: list[str] | None) -> str:
    if makers is None:
        return "(all makers)"
    return ", ".join(makers) if len(makers) < 4 else f"({len(makers)} makers)"


@bp.post("/maker/machines/<agent>/<machine>/release-hold")
@require_login(MAKER)
def release_hold(agent: str, machine: str) -> BaseResponse:
    """Offer work to a held machine again (its maker or an operator); the failures that put
    it on hold no longer count."""
    user = current_user()
    assert user is not None
    machine_id = f"{agent}/{machine}"
    if not user.can_manage_machine(machine_id):
        abort(403, description="this machine belongs to another maker")
    store = dashboard().service.store
    store.holds.release(machine_id, snap.now_utc())  # NotFound 404, Conflict 409
    store.accounts.record_machine_change(
        machine_id, user.name, {"hold": "released"}, snap.now_utc()
    )
    return redirect("/maker", code=303)


@bp.post("/maker/offers/<task_id>/<answer>")
@require_login(MAKER)
def answer_offer(task_id: str, answer: str) -> BaseResponse:
    """Accept or decline an offer made to one of the user's machines."""
    user = current_user()
    assert user is not None
    if answer not in ("accept", "decline"):
        abort(404, description=f"answer must be accept or decline, got {answer!r}")
    task = dashboard().service.store.tasks.get(task_id)
    if not task.machine_id or not user.can_manage_machine(task.machine_id):
        abort(403, description="this offer is for another maker's machine")
    reason = request.form.get("reason", "declined by the maker on the dashboard")
    decide_offer(task.machine_id, task_id, task.offer_no, answer == "accept", reason)
    return redirect("/maker", code=303)
