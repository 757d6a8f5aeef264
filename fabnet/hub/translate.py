"""Agents' task events as the core's events: the message id becomes the event id, which is
what makes applying a re-delivered message change nothing."""

from __future__ import annotations

from fabnet.bus import messages as msg
from fabnet.core import events as ev
from fabnet.hub.artifacts import Assignment


def core_event(event: msg.TaskEvent, machine_id: str, lease_s: float) -> ev.TaskEvent | None:
    """The core event for an agent's message; its id is the message id (idempotency)."""
    m, n, i = machine_id, event.attempt, event.id
    if isinstance(event, msg.TaskAccepted):
        return ev.TaskAccepted(machine_id=m, offer_no=n, event_id=i, lease_s=lease_s)
    if isinstance(event, msg.TaskDeclined):
        return ev.TaskDeclined(machine_id=m, offer_no=n, event_id=i, reason=event.reason[:500])
    if isinstance(event, msg.TaskStarted):
        return ev.TaskStarted(machine_id=m, offer_no=n, event_id=i, lease_s=lease_s)
    if isinstance(event, msg.TaskProgress):
        fraction = min(event.percent / 100.0, 1.0)
        return ev.TaskProgressed(
            machine_id=m, offer_no=n, event_id=i, fraction=fraction, lease_s=lease_s
        )
    if isinstance(event, msg.TaskCompleted):
        hours = event.machine_s / 3600.0
        return ev.TaskCompleted(
            machine_id=m, offer_no=n, event_id=i, grams=event.grams, machine_hours=hours
        )
    if isinstance(event, msg.TaskFailed) and event.reason.startswith(msg.TASK_RELEASED_PREFIX):
        reason = event.reason[len(msg.TASK_RELEASED_PREFIX) :]
        return ev.TaskReleased(machine_id=m, offer_no=n, event_id=i, reason=reason[:500])
    if isinstance(event, msg.TaskFailed):
        reason = event.reason if not event.raw else f"{event.reason} ({event.raw})"
        return ev.TaskFailed(
            machine_id=m, offer_no=n, event_id=i, reason=reason[:500], cause=event.cause
        )
    return None


def completion_refusal(event: msg.TaskCompleted, assigned: Assignment | None) -> str | None:
    """Why ``event`` must not be credited (``ev.completion_problem``), None if it may be.
    ``assigned`` is the hub's record for that task and attempt; records from before the hub
    kept the figures are checked for the file only."""
    if assigned is None:
        return ev.completion_problem(None, 0.0, 0.0, event.sha256, event.grams, event.machine_s)
    grams = assigned.grams if assigned.grams is not None else float("inf")
    time_s = assigned.time_s if assigned.time_s is not None else float("inf")
    return ev.completion_problem(
        assigned.sha256, grams, time_s, event.sha256, event.grams, event.machine_s
    )
