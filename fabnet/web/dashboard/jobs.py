"""``/jobs``: a requester's jobs, and one job with each task's progress and maker, live."""

from __future__ import annotations

from flask import abort

from fabnet.core.states import TaskState
from fabnet.errors import NotFound
from fabnet.web.auth import current_user, require_login
from fabnet.web.dashboard import snapshot as snap
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.render import page_blueprint, page_number, render

bp = page_blueprint("jobs")
JOBS_PER_PAGE = 50


def _design_names() -> dict[str, str]:
    return {e.design_id: e.design.name for e in dashboard().service.designs.entries()}


@bp.get("/jobs")
@require_login()
def jobs() -> str:
    """The user's jobs (an operator's: everyone's), newest first, ``JOBS_PER_PAGE`` a page."""
    user = current_user()
    assert user is not None
    page = page_number()
    requester = None if user.is_operator else user.name
    found = dashboard().listings.jobs(requester, JOBS_PER_PAGE + 1, (page - 1) * JOBS_PER_PAGE)
    rows = []
    for info in found[:JOBS_PER_PAGE]:
        total = sum(info.tasks_by_state.values()) or 1
        done = info.tasks_by_state.get(TaskState.DONE, 0)
        rows.append({"info": info, "done": done, "total": total, "fraction": done / total})
    return render(
        "jobs.html",
        rows=rows,
        names=_design_names(),
        page=page,
        has_next=len(found) > JOBS_PER_PAGE,
    )


@bp.get("/jobs/<job_id>")
@require_login()
def job(job_id: str) -> str:
    """One job; 403 for anyone but its requester and operators."""
    user = current_user()
    assert user is not None
    state = dashboard()
    try:
        info = state.service.store.jobs.get(job_id)
    except NotFound:
        abort(404, description=f"job {job_id} not found")
    if not user.can_see_job(info.spec.requester):
        abort(403, description="this job belongs to another requester")
    return render(
        "job.html",
        info=info,
        spec=info.spec,
        design=_design_names().get(info.spec.design_id, info.spec.design_id[:12]),
        progress=snap.job_progress(state.listings, job_id, info.state.value),
        live_view="job",
        live_job=job_id,
    )
