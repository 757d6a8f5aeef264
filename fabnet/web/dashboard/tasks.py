"""``/tasks/<id>``: one task's attempts, its G-code's layer preview, analysis and safety check."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Response, abort

from fabnet.core.credits import RejectReason
from fabnet.core.jobs import JobSpec
from fabnet.core.states import TaskState
from fabnet.core.tasks import TaskSnapshot
from fabnet.errors import FabnetError, NotFound
from fabnet.gcode import analyse, check
from fabnet.profiles import FdmMaterial, load_materials, load_profile
from fabnet.profiles.model import MachineProfile
from fabnet.web.auth import current_user, require_login
from fabnet.web.charts import temperature_chart
from fabnet.web.dashboard.context import Dashboard, dashboard
from fabnet.web.dashboard.render import page_blueprint, render
from fabnet.web.layer_preview import layer_svg

log = logging.getLogger(__name__)

bp = page_blueprint("tasks")
VIOLATIONS_SHOWN = 20


def _visible_task(task_id: str) -> tuple[TaskSnapshot, JobSpec]:
    """The task and its job if the user may see it: operator, its job's requester, or its
    machine's maker; 403 otherwise."""
    user = current_user()
    assert user is not None
    store = dashboard().service.store
    task = store.tasks.get(task_id)
    job = store.jobs.get(task.job_id).spec
    if user.can_see_job(job.requester):
        return task, job
    if any(a.machine_id and user.can_manage_machine(a.machine_id) for a in task.attempts):
        return task, job
    if task.machine_id and user.can_manage_machine(task.machine_id):
        return task, job
    abort(403, description="this task is neither in your jobs nor on your machines")


def _gcode(state: Dashboard, task: TaskSnapshot) -> tuple[Path, MachineProfile] | None:
    """The G-code file of the task's latest assignment and its machine's profile, if any."""
    store = state.service.store
    for attempt in sorted(task.attempts, key=lambda a: -a.number):
        token = state.artifacts.token(task.task_id, attempt.offer_no)
        try:
            path = state.artifacts.open_assignment(task.task_id, attempt.offer_no, token)
            machine = store.catalog.get_machine(attempt.machine_id)
        except NotFound:
            continue
        if path.exists() and machine.profile:
            return path, load_profile(machine.profile)
    return None


def _analysis(state: Dashboard, path: Path, profile: MachineProfile, material: str) -> Any:
    key = f"{path}|{profile.id}|{material}"
    with state.lock:
        if key in state.analyses:
            return state.analyses[key]
    found = load_materials().get(material)
    filament = found if isinstance(found, FdmMaterial) else None
    result = (analyse(path, profile, filament), check(path, profile))
    with state.lock:
        state.analyses[key] = result
    return result


@bp.get("/tasks/<task_id>")
@require_login()
def task(task_id: str) -> str:
    state = dashboard()
    snapshot, job = _visible_task(task_id)
    found = _gcode(state, snapshot)
    analysis, violations, layers, error = None, [], 0, None
    if found is not None:
        path, profile = found
        try:
            analysis, violations = _analysis(state, path, profile, job.material)
            layers = state.layers.get(path, profile).layers
        except FabnetError as exc:
            log.warning("task %s: cannot read %s: %s", task_id, path.name, exc)
            error = str(exc)
    return render(
        "task.html",
        task=snapshot,
        job=job,
        profile=found[1] if found else None,
        analysis=analysis,
        violations=violations[:VIOLATIONS_SHOWN],
        violation_count=len(violations),
        layers=layers,
        first_layer=layer_svg(state.layers.get(*found), layers // 2) if layers and found else "",
        error=error,
        temperatures=_temperatures(state, snapshot),
        review=state.service.store.reviews.review_of(task_id),
        can_review=_can_review(snapshot, job),
        reasons=[r.value for r in RejectReason if r is not RejectReason.OTHER],
    )


def _can_review(task: TaskSnapshot, job: JobSpec) -> bool:
    """Whether the user may accept or reject this part: it is done and theirs to answer
    (its job's requester, or an operator)."""
    user = current_user()
    return (
        user is not None
        and task.state is TaskState.DONE
        and user.can_see_job(job.requester)
        and (user.is_requester or user.is_operator)
    )


def _temperatures(state: Dashboard, task: TaskSnapshot) -> str:
    """The chart of the task's heaters, if its machines reported any (FDM: none for CNC)."""
    samples = state.service.store.telemetry.history(task.task_id)
    return temperature_chart(samples) if samples else ""


@bp.get("/tasks/<task_id>/layer/<int:n>.svg")
@require_login()
def layer(task_id: str, n: int) -> Response:
    state = dashboard()
    snapshot, _ = _visible_task(task_id)
    found = _gcode(state, snapshot)
    if found is None:
        abort(404, description=f"task {task_id} has no G-code yet")
    svg = layer_svg(state.layers.get(*found), n)
    return Response(svg, mimetype="image/svg+xml")
