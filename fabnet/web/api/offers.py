"""``/offers``: tasks offered to a maker's ask-first machines, and the maker's accept or
decline, which the hub's commands apply as if the agent had sent ``task.accepted`` /
``task.declined`` (a dispatcher then assigns or re-offers as usual)."""

from __future__ import annotations

from typing import Any

from flask import Response

from fabnet.core.states import TaskState
from fabnet.errors import Conflict
from fabnet.web.api.context import LIMIT, OFFSET, ApiContext, forbid, iso, own_makers
from fabnet.web.api.jobs import TASK, paged, task_with_maker
from fabnet.web.auth import MAKER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

OFFER = Schema(
    "Offer",
    (
        Field("task_id", "string", required=True),
        Field("job_id", "string", required=True),
        Field("machine", "string", required=True),
        Field("offer_no", "integer", required=True),
        Field("offer_until", "string", nullable=True, required=True, format="date-time"),
        Field("design_id", "string", required=True),
        Field("material", "string", required=True),
        Field("parts", "integer", required=True),
    ),
)
DECLINE = Schema("OfferDecline", (Field("reason", "string", max_length=500, default="declined"),))
DECIDED = Schema(
    "OfferDecided",
    (
        Field("decision", "string", required=True, enum=("accepted", "declined")),
        Field("task", "object", required=True, schema=TASK),
    ),
)


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    store = ctx.service.store

    @routes.route(
        "GET",
        "/offers",
        summary="Offers waiting for the maker's decision (own machines)",
        roles=(MAKER,),
        query=Schema("OfferQuery", (LIMIT, OFFSET)),
        response=ListOf(OFFER),
    )
    def list_offers(user: User | None, query: dict[str, Any]) -> Response:
        found = ctx.listings.offer_rows(own_makers(user_of(user)), query["limit"], query["offset"])
        items = [
            {
                "task_id": o.task_id,
                "job_id": o.job_id,
                "machine": o.machine_id,
                "offer_no": o.offer_no,
                "offer_until": iso(o.offer_until),
                "design_id": o.design_id,
                "material": o.material,
                "parts": o.parts,
            }
            for o in found
        ]
        return paged(items, query["limit"], query["offset"])

    def decide(user: User | None, task_id: str, accept: bool, reason: str) -> dict[str, Any]:
        task = store.tasks.get(task_id)
        machine_id = task.machine_id
        if machine_id is None or not user_of(user).can_manage_machine(machine_id):
            forbid(f"task {task_id} is not offered to one of your machines")
        assert machine_id is not None
        if task.state is not TaskState.OFFERED:
            raise Conflict(f"task {task_id} is {task.state.value}, not offered: nothing to decide")
        if store.catalog.get_machine(machine_id).policy.auto_accept:
            raise Conflict(f"machine {machine_id} accepts offers itself (auto_accept is on)")
        if ctx.offers is None:
            raise Conflict("this hub has no dispatcher running: decisions cannot be applied")
        ctx.offers.decide(machine_id, task_id, task.offer_no, accept, reason)
        return {
            "decision": "accepted" if accept else "declined",
            "task": task_with_maker(store.tasks.get(task_id)),
        }

    @routes.route(
        "POST",
        "/offers/<task_id>/accept",
        summary="Accept an offer (409 if no longer offered)",
        roles=(MAKER,),
        response=DECIDED,
    )
    def accept_offer(user: User | None, task_id: str) -> dict[str, Any]:
        return decide(user, task_id, True, "")

    @routes.route(
        "POST",
        "/offers/<task_id>/decline",
        summary="Decline an offer (409 if no longer offered)",
        roles=(MAKER,),
        body=DECLINE,
        response=DECIDED,
    )
    def decline_offer(user: User | None, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return decide(user, task_id, False, body["reason"])
