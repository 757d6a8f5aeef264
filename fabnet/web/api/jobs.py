"""``/jobs`` and ``/tasks``: submit as the logged-in requester, list own (operators: all),
show with per-task progress and maker, cancel (409 once final), task detail with attempts."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from fabnet.core.credits import MAX_AMOUNT_MC
from fabnet.core.jobs import Quality
from fabnet.core.states import JobState, TaskState
from fabnet.hub.economy import Economy
from fabnet.hub.machines import split_machine_id
from fabnet.hub.service import MAX_PRIORITY, MAX_QUANTITY, JobRequest, job_json, task_json
from fabnet.web.api.context import LIMIT, OFFSET, ApiContext, forbid
from fabnet.web.auth import OPERATOR, REQUESTER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

NEXT_OFFSET_HEADER = "X-Next-Offset"

JOB_SUBMIT = Schema(  # the fields of a submit; POST /jobs takes them with BUDGET_CAP
    "JobFields",
    (
        Field(
            "design",
            "string",
            required=True,
            min_length=1,
            max_length=200,
            description="slug or id",
        ),
        Field("quantity", "integer", required=True, minimum=1, maximum=MAX_QUANTITY),
        Field(
            "material", "string", required=True, min_length=1, max_length=32, description="e.g. PLA"
        ),
        Field("quality", "string", enum=tuple(q.value for q in Quality), default="normal"),
        Field("priority", "integer", minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY, default=0),
        Field("deadline", "string", nullable=True, format="date-time"),
        Field(
            "requester",
            "string",
            nullable=True,
            max_length=200,
            description="operators only: submit for this requester (default: yourself)",
        ),
    ),
)
BUDGET_CAP = Field(
    "budget_cap_mc",
    "integer",
    nullable=True,
    minimum=1,
    maximum=MAX_AMOUNT_MC,
    description="the most the job may cost (milli-credits), held from your credits at submit; "
    "without it the hub's [economy] require_credits decides: hold the quote's highest price, "
    "or hold nothing and pay at acceptance",
)
JOB_SUBMIT_CAPPED = Schema("JobSubmit", (*JOB_SUBMIT.fields, BUDGET_CAP))
JOB_QUERY = Schema(
    "JobQuery",
    (LIMIT, OFFSET, Field("requester", "string", description="operators: one requester's")),
)
TASK_FIELDS = (
    Field("id", "string", required=True),
    Field("job_id", "string", required=True),
    Field("state", "string", required=True, enum=tuple(s.value for s in TaskState)),
    Field("machine", "string", nullable=True, required=True),
    Field("maker", "string", nullable=True, required=True, description="who makes this part"),
    Field("offer_no", "integer", required=True),
    Field("progress", "number", required=True, minimum=0, maximum=1),
    Field("lease_until", "string", nullable=True, required=True, format="date-time"),
)
TASK = Schema("Task", TASK_FIELDS)
ATTEMPT = Schema(
    "Attempt",
    (
        Field("number", "integer", required=True),
        Field("machine", "string", required=True),
        Field("started_at", "string", required=True, format="date-time"),
        Field("ended_at", "string", nullable=True, required=True, format="date-time"),
        Field("cause", "string", nullable=True, required=True),
        Field("detail", "string", required=True),
        Field("failure", "string", nullable=True, description="FailureCause, issue 10"),
    ),
)
TASK_DETAIL = Schema(
    "TaskDetail", (*TASK_FIELDS, Field("attempts", "array", required=True, items=ATTEMPT))
)
JOB_FIELDS = (
    Field("id", "string", required=True),
    Field("requester", "string", required=True),
    Field("design_id", "string", required=True),
    Field("material", "string", required=True, min_length=1),
    Field("quantity", "integer", required=True),
    Field("quality", "string", required=True),
    Field("priority", "integer", required=True),
    Field("deadline", "string", nullable=True, required=True, format="date-time"),
    Field("state", "string", required=True, enum=tuple(s.value for s in JobState)),
    Field("tasks", "object", required=True, description="task count by state"),
    Field("done", "integer", required=True),
    Field("created_at", "string", nullable=True, required=True, format="date-time"),
)
JOB = Schema("Job", JOB_FIELDS)
JOB_DETAIL = Schema("JobDetail", (*JOB_FIELDS, Field("task_list", "array", items=TASK)))


def task_with_maker(task: Any) -> dict[str, Any]:
    """``task_json`` plus the maker (agent) holding the task."""
    data = task_json(task)
    data["maker"] = split_machine_id(task.machine_id)[0] if task.machine_id else None
    return data


def paged(items: list[Any], limit: int, offset: int) -> Response:
    """A JSON list; ``X-Next-Offset`` tells a client there may be more."""
    response = jsonify(items)
    if len(items) == limit:
        response.headers[NEXT_OFFSET_HEADER] = str(offset + limit)
    return response


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    service = ctx.service
    economy = Economy(service, ctx.economy_terms, ctx.clock)

    @routes.route(
        "POST",
        "/jobs",
        summary="Submit a job (409 when credits are required and do not cover its cost)",
        roles=(REQUESTER,),
        body=JOB_SUBMIT_CAPPED,
        response=JOB,
        status=201,
    )
    def submit_job(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        me = user_of(user)
        requester = body.pop("requester") or me.name
        if requester != me.name and not me.is_operator:
            forbid(f"only operators submit for someone else, got requester {requester!r}")
        cap = body.pop("budget_cap_mc")
        request = JobRequest(requester=requester, **body)
        if cap is None and not economy.terms().require_credits:
            return job_json(service.submit(request))
        return job_json(economy.submit(request, cap)[0])  # the hold: GET /credits/statement

    @routes.route(
        "GET",
        "/jobs",
        summary="List jobs (own; operators: all)",
        roles=(REQUESTER,),
        query=JOB_QUERY,
        response=ListOf(JOB),
    )
    def list_jobs(user: User | None, query: dict[str, Any]) -> Response:
        me = user_of(user)
        requester = query["requester"]
        if not me.is_operator:
            if requester not in (None, me.name):
                forbid(f"requesters see only their own jobs, got requester {requester!r}")
            requester = me.name
        jobs = ctx.listings.jobs(requester, query["limit"], query["offset"])
        return paged([job_json(j) for j in jobs], query["limit"], query["offset"])

    @routes.route(
        "GET",
        "/jobs/<job_id>",
        summary="A job with its tasks",
        roles=(REQUESTER,),
        response=JOB_DETAIL,
    )
    def show_job(user: User | None, job_id: str) -> dict[str, Any]:
        info = service.store.jobs.get(job_id)
        if not user_of(user).can_see_job(info.spec.requester):
            forbid(f"job {job_id} belongs to another requester")
        data = job_json(info)
        data["task_list"] = [
            task_with_maker(t) for t in service.store.tasks.find(job_id=job_id, limit=MAX_TASKS)
        ]
        return data

    @routes.route(
        "POST",
        "/jobs/<job_id>/cancel",
        summary="Cancel a job (409 when already final)",
        roles=(REQUESTER,),
        response=JOB,
    )
    def cancel_job(user: User | None, job_id: str) -> dict[str, Any]:
        info = service.store.jobs.get(job_id)
        me = user_of(user)
        if not me.can_see_job(info.spec.requester):
            forbid(f"job {job_id} belongs to another requester")
        return job_json(service.cancel(job_id, reason=f"cancelled by {me.name}"))

    @routes.route(
        "GET",
        "/tasks/<task_id>",
        summary="A task with its attempts",
        roles=(REQUESTER, "maker", OPERATOR),
        response=TASK_DETAIL,
    )
    def show_task(user: User | None, task_id: str) -> dict[str, Any]:
        me = user_of(user)
        snapshot = service.store.tasks.get(task_id)
        machines = {a.machine_id for a in snapshot.attempts}
        if snapshot.machine_id:
            machines.add(snapshot.machine_id)
        requester = service.store.jobs.get(snapshot.job_id).spec.requester
        if not me.can_see_job(requester) and not any(me.can_manage_machine(m) for m in machines):
            forbid(f"task {task_id} is neither your job's nor on your machines")
        data = service.task(task_id)
        data["maker"] = split_machine_id(snapshot.machine_id)[0] if snapshot.machine_id else None
        return data

    def _control(user: User | None, task_id: str, pause: bool) -> dict[str, Any]:
        me = user_of(user)
        snapshot = service.store.tasks.get(task_id)
        if not snapshot.machine_id or not me.can_manage_machine(snapshot.machine_id):
            forbid(f"task {task_id} is not running on one of your machines")
        service.pause(task_id, pause)
        return service.task(task_id)

    @routes.route(
        "POST",
        "/tasks/<task_id>/pause",
        summary="Pause a running task on its machine (409 when not running)",
        roles=("maker", OPERATOR),
        response=TASK_DETAIL,
    )
    def pause_task(user: User | None, task_id: str) -> dict[str, Any]:
        return _control(user, task_id, True)

    @routes.route(
        "POST",
        "/tasks/<task_id>/resume",
        summary="Resume a paused task on its machine (409 when not running)",
        roles=("maker", OPERATOR),
        response=TASK_DETAIL,
    )
    def resume_task(user: User | None, task_id: str) -> dict[str, Any]:
        return _control(user, task_id, False)


MAX_TASKS = 10_000
