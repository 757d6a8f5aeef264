"""The task state machine of DESIGN.md §2: ``apply(task, event, now)`` is pure and idempotent.

Idempotency has two layers, and both hold:

* **duplicates** — ``TaskSnapshot.applied_event_ids`` holds the ids of events already applied
  (the store persists them in ``task_events``); an event whose id is there is ignored with
  ``IgnoreReason.DUPLICATE`` and the task is unchanged.
* **stale or out-of-order events** — an agent event names its machine and the ``offer_no`` it
  answers; one from another machine or an older offer (e.g. a progress from the previous
  attempt's machine after a requeue) is ignored with ``STALE``; an event that does not fit the
  state is ignored with ``WRONG_STATE``, ``FINAL`` or ``NOT_DUE``. A task is ``done`` once,
  except that its requester may send it back to the queue once (``task.rejected``, issue 11).

Agent events are accepted from any leased state of their offer (claimed, preparing, running),
because hubs sharing a subscription may handle one agent's events out of order — except
``task.completed``, which needs the G-code assigned first (preparing or running): the hub moves
the task to preparing before it sends ``task.assign``, so no honest completion comes earlier.

An *attempt* is one claim of the task by one machine. Every attempt that ends other than
``done`` or ``released`` uses one of ``max_attempts``; the last one ends the task as ``failed``.
A released attempt was handed back by a stopping agent that made its machine safe: it says
nothing against the task, so it is not counted (a crash, lease expiry or lost machine is).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from fabnet.core.events import (
    LeaseExpired,
    MachineWentOffline,
    OfferTimedOut,
    TaskAccepted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskDeclined,
    TaskEvent,
    TaskFailed,
    TaskOffered,
    TaskProgressed,
    TaskRejected,
    TaskReleased,
    TaskStarted,
)
from fabnet.core.states import (
    LEASED_TASK_STATES,
    AttemptCause,
    IgnoreReason,
    TaskState,
    TransitionCause,
)
from fabnet.core.task_steps import (
    ASSIGNED_STATES,
    back_to_queue,
    check_holder,
    end_attempt,
    interrupt,
    lease_end,
    move,
    wrong_state,
)
from fabnet.core.tasks import Attempt, Ignored, Outcome, TaskSnapshot
from fabnet.core.timeutil import require_utc


def apply(task: TaskSnapshot, event: TaskEvent, now: datetime) -> Outcome:
    """Apply ``event`` to ``task`` at ``now`` (UTC-aware); pure, never raises for bad order.

    Returns a ``Transition`` when the task changed, else ``Ignored`` with the reason.
    Raises ``InvalidInput`` only if ``now`` is naive.
    """
    now = require_utc("now", now)
    if event.event_id in task.applied_event_ids:
        return Ignored(event.event_id, IgnoreReason.DUPLICATE, "event already applied")
    if isinstance(event, TaskRejected):  # the one event a final (done) task takes
        return _on_rejected(task, event, now)
    if task.state.is_final:
        return Ignored(event.event_id, IgnoreReason.FINAL, f"task is {task.state.value}")
    match event:
        case TaskOffered():
            return _on_offered(task, event, now)
        case TaskAccepted():
            return _on_accepted(task, event, now)
        case TaskDeclined():
            return _on_declined(task, event, now)
        case OfferTimedOut():
            return _on_offer_timed_out(task, event, now)
        case TaskAssigned():
            return _on_assigned(task, event, now)
        case TaskStarted():
            return _on_started(task, event, now)
        case TaskProgressed():
            return _on_progressed(task, event, now)
        case TaskCompleted():
            return _on_completed(task, event, now)
        case TaskFailed():
            return _on_failed(task, event, now)
        case TaskReleased():
            return _on_released(task, event, now)
        case LeaseExpired():
            return _on_lease_expired(task, event, now)
        case MachineWentOffline():
            return _on_machine_offline(task, event, now)
        case TaskCancelled():
            return _on_cancelled(task, event, now)
        case TaskRejected():  # handled above
            return _on_rejected(task, event, now)


def _on_offered(task: TaskSnapshot, event: TaskOffered, now: datetime) -> Outcome:
    if task.state is not TaskState.QUEUED:
        return wrong_state(task, event)
    return move(
        task,
        event,
        now,
        TaskState.OFFERED,
        TransitionCause.OFFERED,
        machine_id=event.machine_id,
        offer_no=task.offer_no + 1,
        offer_until=now + timedelta(seconds=event.offer_s),
        lease_until=None,
        progress=0.0,
    )


def _on_accepted(task: TaskSnapshot, event: TaskAccepted, now: datetime) -> Outcome:
    bad = check_holder(
        task, event, event.machine_id, event.offer_no, frozenset({TaskState.OFFERED})
    )
    if bad:
        return bad
    attempt = Attempt(len(task.attempts) + 1, event.machine_id, event.offer_no, now)
    moved = move(
        task,
        event,
        now,
        TaskState.CLAIMED,
        TransitionCause.ACCEPTED,
        offer_until=None,
        lease_until=lease_end(now, event.lease_s),
        attempts=(*task.attempts, attempt),
    )
    return replace(moved, attempt_started=attempt)


def _on_declined(task: TaskSnapshot, event: TaskDeclined, now: datetime) -> Outcome:
    bad = check_holder(
        task, event, event.machine_id, event.offer_no, frozenset({TaskState.OFFERED})
    )
    return bad or back_to_queue(task, event, now, TransitionCause.DECLINED)


def _on_offer_timed_out(task: TaskSnapshot, event: OfferTimedOut, now: datetime) -> Outcome:
    if task.state is not TaskState.OFFERED:
        return wrong_state(task, event)
    if task.offer_until is not None and now < task.offer_until:
        return Ignored(event.event_id, IgnoreReason.NOT_DUE, f"offer open until {task.offer_until}")
    return back_to_queue(task, event, now, TransitionCause.OFFER_TIMEOUT)


def _on_assigned(task: TaskSnapshot, event: TaskAssigned, now: datetime) -> Outcome:
    bad = check_holder(
        task, event, event.machine_id, event.offer_no, frozenset({TaskState.CLAIMED})
    )
    if bad:
        return bad
    return move(
        task,
        event,
        now,
        TaskState.PREPARING,
        TransitionCause.ASSIGNED,
        lease_until=lease_end(now, event.lease_s),
    )


def _on_started(task: TaskSnapshot, event: TaskStarted, now: datetime) -> Outcome:
    states = frozenset({TaskState.CLAIMED, TaskState.PREPARING})
    bad = check_holder(task, event, event.machine_id, event.offer_no, states)
    if bad:
        return bad
    return move(
        task,
        event,
        now,
        TaskState.RUNNING,
        TransitionCause.STARTED,
        lease_until=lease_end(now, event.lease_s),
    )


def _on_progressed(task: TaskSnapshot, event: TaskProgressed, now: datetime) -> Outcome:
    bad = check_holder(task, event, event.machine_id, event.offer_no, LEASED_TASK_STATES)
    if bad:
        return bad
    return move(
        task,
        event,
        now,
        task.state,
        TransitionCause.PROGRESS,
        lease_until=lease_end(now, event.lease_s),
        progress=max(task.progress, event.fraction),
    )


def _on_completed(task: TaskSnapshot, event: TaskCompleted, now: datetime) -> Outcome:
    # Not from ``claimed``: nothing can have run before the hub assigned G-code (issue 13).
    bad = check_holder(task, event, event.machine_id, event.offer_no, ASSIGNED_STATES)
    if bad:
        return bad
    attempts, ended = end_attempt(task, event, now, AttemptCause.DONE)
    moved = move(
        task,
        event,
        now,
        TaskState.DONE,
        TransitionCause.COMPLETED,
        lease_until=None,
        progress=1.0,
        attempts=attempts,
    )
    return replace(moved, attempt_ended=ended, completed=event)


def _on_failed(task: TaskSnapshot, event: TaskFailed, now: datetime) -> Outcome:
    bad = check_holder(task, event, event.machine_id, event.offer_no, LEASED_TASK_STATES)
    if bad:
        return bad
    return interrupt(
        task, event, now, AttemptCause.FAILED, TransitionCause.ATTEMPT_FAILED, event.reason
    )


def _on_rejected(task: TaskSnapshot, event: TaskRejected, now: datetime) -> Outcome:
    """done -> queued once: a task with an earlier done attempt was rejected before."""
    if task.state is not TaskState.DONE:
        return wrong_state(task, event)
    if sum(1 for a in task.attempts if a.cause is AttemptCause.DONE) > 1:
        return Ignored(event.event_id, IgnoreReason.WRONG_STATE, "task was rejected once already")
    return move(
        task,
        event,
        now,
        TaskState.QUEUED,
        TransitionCause.REJECTED,
        machine_id=None,
        offer_until=None,
        lease_until=None,
        progress=0.0,
    )


def _on_released(task: TaskSnapshot, event: TaskReleased, now: datetime) -> Outcome:
    bad = check_holder(task, event, event.machine_id, event.offer_no, LEASED_TASK_STATES)
    if bad:
        return bad
    attempts, ended = end_attempt(task, event, now, AttemptCause.RELEASED, event.reason)
    moved = move(
        task,
        event,
        now,
        TaskState.QUEUED,
        TransitionCause.RELEASED,
        machine_id=None,
        offer_until=None,
        lease_until=None,
        attempts=attempts,
    )
    return replace(moved, attempt_ended=ended)


def _on_lease_expired(task: TaskSnapshot, event: LeaseExpired, now: datetime) -> Outcome:
    if task.state not in LEASED_TASK_STATES:
        return wrong_state(task, event)
    if task.lease_until is not None and now < task.lease_until:
        return Ignored(event.event_id, IgnoreReason.NOT_DUE, f"lease runs until {task.lease_until}")
    return interrupt(task, event, now, AttemptCause.LEASE_EXPIRED, TransitionCause.LEASE_EXPIRED)


def _on_machine_offline(task: TaskSnapshot, event: MachineWentOffline, now: datetime) -> Outcome:
    if task.machine_id != event.machine_id:
        return Ignored(
            event.event_id, IgnoreReason.STALE, f"task is not held by {event.machine_id}"
        )
    if task.state is TaskState.OFFERED:
        return back_to_queue(task, event, now, TransitionCause.MACHINE_OFFLINE)
    if task.state not in LEASED_TASK_STATES:
        return wrong_state(task, event)
    return interrupt(
        task, event, now, AttemptCause.MACHINE_OFFLINE, TransitionCause.MACHINE_OFFLINE
    )


def _on_cancelled(task: TaskSnapshot, event: TaskCancelled, now: datetime) -> Outcome:
    attempts, ended = end_attempt(task, event, now, AttemptCause.CANCELLED, event.reason)
    moved = move(
        task,
        event,
        now,
        TaskState.CANCELLED,
        TransitionCause.CANCELLED,
        machine_id=None,
        offer_until=None,
        lease_until=None,
        attempts=attempts,
    )
    return replace(moved, attempt_ended=ended)
