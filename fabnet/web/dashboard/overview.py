"""``/``: the operator's overview — machines, queue, tasks by state, production, stuck tasks."""

from __future__ import annotations

from flask import redirect
from werkzeug.wrappers import Response

from fabnet.web.auth import current_user, require_login
from fabnet.web.charts import STATE_COLOURS, area_chart, machine_wall
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.render import page_blueprint, render
from fabnet.web.events import materials_chart

bp = page_blueprint("overview")


@bp.get("/")
@require_login()
def overview() -> str | Response:
    """Operators see the network; others go to their own page."""
    user = current_user()
    assert user is not None
    if not user.is_operator:
        return redirect("/maker" if user.is_maker else "/jobs")
    store = dashboard().service.store
    now = snap.now_utc()
    machines = store.catalog.list_machines()
    active = snap.active_tasks(store)
    counts = snap.task_counts(store)
    prod = snap.production(store, now)
    return render(
        "overview.html",
        live_view="overview",
        counts=counts,
        queue=counts["queued"] + counts["offered"],
        machine_counts=snap.machine_counts(machines),
        state_colours=STATE_COLOURS,
        total=snap.totals_json(prod.total),
        today=snap.totals_json(prod.today),
        production_svg=area_chart(prod.points, title="Grams by material", unit="g"),
        material_svg=materials_chart(prod),
        wall_svg=machine_wall(snap.wall_tiles(machines, active)),
        stuck=snap.stuck_tasks(store, now),
        now=now,
    )
