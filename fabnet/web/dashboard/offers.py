"""A maker's answer to an offer, given on the dashboard: handed to the API's offer decider, the
same one ``/api/v1/offers/...`` uses, so both paths act alike."""

from __future__ import annotations

from flask import abort, current_app

API_EXTENSION = "fabnet_api_context"


def decide_offer(machine_id: str, task_id: str, offer_no: int, accept: bool, reason: str) -> None:
    """Apply the decision; 503 when this hub has no offer decider wired."""
    context = current_app.extensions.get(API_EXTENSION)
    decider = getattr(context, "offers", None)
    if decider is None:
        abort(503, description="this hub cannot take answers to offers (no offer decider)")
    decider.decide(machine_id, task_id, offer_no, accept, reason)
