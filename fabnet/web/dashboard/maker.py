"""``/maker``: a maker's machines and current tasks, offers waiting for an answer, their
contribution over time, and registering a machine."""

from __future__ import annotations

from flask import abort, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from fabnet.core.ledger import Totals
from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.store.listings import Listings
from fabnet.web.auth import MAKER, User, current_user, require_login
from fabnet.web.charts import area_chart, bar_chart
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.offers import decide_offer
from fabnet.web.dashboard.registering import Registered, profiles, register_from_form
from fabnet.web.dashboard.render import page_blueprint, render

bp = page_blueprint("maker")
OFFERS_SHOWN = 50


def _maker_ids(user: User) -> list[str]:
    """The makers this page is about: the user's own; for an operator, every maker."""
    if user.is_maker and user.maker_ids:
        return sorted(user.maker_ids)
    if user.is_operator:
        return [m.maker_id for m in dashboard().service.store.catalog.list_makers()]
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
    store = dashboard().service.store
    makers = _maker_ids(user)
    machines = [m for mid in makers for m in store.catalog.list_machines(maker_id=mid)]
    active = snap.active_tasks(store)
    offers = Listings(store.db).waiting_offers(makers, OFFERS_SHOWN, 0)
    now = snap.now_utc()
    total, points = Totals(), []
    by_material: dict[str, Totals] = {}
    for mid in makers:
        prod = snap.production(store, now, maker_id=mid)
        total = total + prod.total
        points.extend(prod.points)
        for key, t in prod.by_material.items():
            by_material[key] = by_material.get(key, Totals()) + t
    return render(
        "maker.html",
        live_view="maker",
        makers=makers,
        machines=machines,
        active=active,
        offers=offers,
        total=snap.totals_json(total),
        contribution_svg=area_chart(points, title="My grams by material", unit="g"),
        hours_svg=bar_chart(
            [(k, t.machine_hours) for k, t in sorted(by_material.items())],
            unit="h",
            title="Machine hours by material",
        ),
        registered=registered,
        register_error=error,
        profiles=profiles(),
    )


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
