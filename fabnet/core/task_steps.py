"""The building blocks of ``fabnet.core.lifecycle.apply``'s handlers: move a task to a state,
check that an event comes from the offer holding it, end the current attempt, requeue or fail.
Apart from the handlers so each handler reads as the rule it is; pure like them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from fabnet.core.events import TaskEvent, TaskFailed
from fabnet.core.states import AttemptCause, FailureCause, IgnoreReason, TaskState, TransitionCause
from fabnet.core.tasks import Attempt, Ignored, TaskSnapshot, Transition

# States in which the machine holds G-code the hub assigned: only these may complete.
ASSIGNED_STATES = frozenset({TaskState.PREPARING, TaskState.RUNNING})

# Attempt ends that use none of the task's max_attempts.
NOT_COUNTED = frozenset({AttemptCause.RELEASED, AttemptCause.DONE})

# The failure cause of an attempt that ended other than by the agent's task.failed.
ATTEMPT_FAILURES = {
    AttemptCause.RELEASED: FailureCause.RELEASED,
    AttemptCause.CANCELLED: FailureCause.CANCELLED_BY_HUB,
    AttemptCause.LEASE_EXPIRED: FailureCause.LEASE_EXPIRED,
    AttemptCause.MACHINE_OFFLINE: FailureCause.MACHINE_OFFLINE,
}


def move(
    task: TaskSnapshot,
    event: TaskEvent,
    now: datetime,
    to_state: TaskState,
    cause: TransitionCause,
    **changes: object,
) -> Transition:
    """``task`` in ``to_state`` with ``event`` recorded as applied and ``changes`` set."""
    new = replace(
        task,
        state=to_state,
        applied_event_ids=task.applied_event_ids | {event.event_id},
        updated_at=now,
        **changes,  # type: ignore[arg-type]
    )
    return Transition(new, event.event_id, cause, task.state, to_state, now)


def lease_end(now: datetime, lease_s: float) -> datetime:
    """When a lease of ``lease_s`` seconds taken at ``now`` runs out."""
    return now + timedelta(seconds=lease_s)


def check_holder(
    task: TaskSnapshot,
    event: TaskEvent,
    machine_id: str,
    offer_no: int,
    states: frozenset[TaskState],
) -> Ignored | None:
    """Why an event of ``machine_id``'s offer ``offer_no`` does not apply (STALE: another
    holder; WRONG_STATE: not in ``states``), or None if it does."""
    if task.machine_id != machine_id or task.offer_no != offer_no:
        return Ignored(
            event.event_id,
            IgnoreReason.STALE,
            f"event from machine {machine_id} offer {offer_no}; task is held by "
            f"{task.machine_id} offer {task.offer_no}",
        )
    if task.state not in states:
        return Ignored(event.event_id, IgnoreReason.WRONG_STATE, f"task is {task.state.value}")
    return None


def wrong_state(task: TaskSnapshot, event: TaskEvent) -> Ignored:
    return Ignored(event.event_id, IgnoreReason.WRONG_STATE, f"task is {task.state.value}")


def back_to_queue(
    task: TaskSnapshot, event: TaskEvent, now: datetime, cause: TransitionCause
) -> Transition:
    return move(
        task,
        event,
        now,
        TaskState.QUEUED,
        cause,
        machine_id=None,
        offer_until=None,
        lease_until=None,
    )


def end_attempt(
    task: TaskSnapshot,
    event: TaskEvent,
    now: datetime,
    cause: AttemptCause,
    detail: str = "",
) -> tuple[tuple[Attempt, ...], Attempt | None]:
    """The attempts with the current one ended for ``cause``, and that ended attempt (None if
    the task had none running)."""
    current = task.current_attempt
    if current is None:
        return task.attempts, None
    failure = ATTEMPT_FAILURES.get(cause)
    if isinstance(event, TaskFailed):
        failure = event.cause or FailureCause.UNKNOWN
    ended = replace(current, ended_at=now, cause=cause, detail=detail, failure=failure)
    return (*task.attempts[:-1], ended), ended


def interrupt(
    task: TaskSnapshot,
    event: TaskEvent,
    now: datetime,
    attempt_cause: AttemptCause,
    cause: TransitionCause,
    detail: str = "",
) -> Transition:
    """End the current attempt other than done: requeue, or fail if no attempts are left."""
    attempts, ended = end_attempt(task, event, now, attempt_cause, detail)
    # A done attempt (one the requester rejected, issue 11) used no attempt of the remake.
    used = sum(1 for a in attempts if a.cause not in NOT_COUNTED)
    if used >= task.max_attempts:
        to_state, cause = TaskState.FAILED, TransitionCause.ATTEMPTS_EXHAUSTED
    else:
        to_state = TaskState.QUEUED
    moved = move(
        task,
        event,
        now,
        to_state,
        cause,
        machine_id=None,
        offer_until=None,
        lease_until=None,
        attempts=attempts,
    )
    return replace(moved, attempt_ended=ended)
