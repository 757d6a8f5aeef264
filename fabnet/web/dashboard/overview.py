"""``/``: the operator's overview — machines, queue, tasks by state, production, stuck tasks —
rendered from the shared network figures (computed at most once a second for everyone)."""

from __future__ import annotations

from flask import redirect
from markupsafe import Markup
from werkzeug.wrappers import Response

from fabnet.web.auth import current_user, require_login
from fabnet.web.charts import STATE_COLOURS
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.render import page_blueprint, render

bp = page_blueprint("overview")


@bp.get("/")
@require_login()
def overview() -> str | Response:
    """Operators see the network; others go to their own page."""
    user = current_user()
    assert user is not None
    if not user.is_operator:
        return redirect("/maker" if user.is_maker else "/jobs")
    figures = dashboard().network.get()
    data = figures.data
    charts = data["charts"]
    return render(
        "overview.html",
        live_view="overview",
        counts=data["counts"],
        queue=data["queue"],
        machine_counts=data["machine_counts"],
        state_colours=STATE_COLOURS,
        total=data["totals"],
        today=data["today"],
        production_svg=Markup(charts["production"]),
        material_svg=Markup(charts["materials"]),
        wall_svg=Markup(charts["wall"]),
        stuck=figures.stuck,
        now=figures.at,
    )
