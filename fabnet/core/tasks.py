"""Task values: the snapshot the state machine reads, its attempts, and its outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fabnet.core.events import TaskCompleted
from fabnet.core.states import (
    LEASED_TASK_STATES,
    AttemptCause,
    FailureCause,
    IgnoreReason,
    TaskState,
    TransitionCause,
)
from fabnet.core.timeutil import require_utc
from fabnet.errors import InvalidInput


@dataclass(frozen=True)
class Attempt:
    """One claim of a task by one machine; ``ended_at``/``cause`` are None while it runs."""

    number: int  # 1-based
    machine_id: str
    offer_no: int
    started_at: datetime
    ended_at: datetime | None = None
    cause: AttemptCause | None = None
    detail: str = ""
    failure: FailureCause | None = None  # why it ended badly; None while running or done


@dataclass(frozen=True)
class TaskSnapshot:
    """Everything the state machine needs to know about one task.

    ``machine_id`` is the machine holding the current offer or claim (None when queued or
    final); ``offer_no`` counts offers so far. ``applied_event_ids`` may hold only the ids
    relevant to the event at hand (the store passes the id if it was seen before).
    """

    task_id: str
    job_id: str
    state: TaskState = TaskState.QUEUED
    max_attempts: int = 3
    offer_no: int = 0
    machine_id: str | None = None
    offer_until: datetime | None = None
    lease_until: datetime | None = None
    progress: float = 0.0
    attempts: tuple[Attempt, ...] = ()
    applied_event_ids: frozenset[str] = frozenset()
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be >= 1, got {self.max_attempts}")

    @property
    def current_attempt(self) -> Attempt | None:
        """The attempt still running, if any."""
        if self.attempts and self.attempts[-1].ended_at is None:
            return self.attempts[-1]
        return None


@dataclass(frozen=True)
class Transition:
    """The result of an event that changed a task: the new snapshot and what to record.

    ``from_state == to_state`` only for ``progress`` (lease extended). ``attempt_started`` is
    a new attempt to insert, ``attempt_ended`` the current attempt now closed (same number).
    ``completed`` is set exactly when the task became done: the store writes a ledger entry.
    """

    task: TaskSnapshot
    event_id: str
    cause: TransitionCause
    from_state: TaskState
    to_state: TaskState
    at: datetime
    attempt_started: Attempt | None = None
    attempt_ended: Attempt | None = None
    completed: TaskCompleted | None = None


@dataclass(frozen=True)
class Ignored:
    """An event that left the task unchanged, and why (for the log and the audit trail)."""

    event_id: str
    reason: IgnoreReason
    detail: str


Outcome = Transition | Ignored


def expired_leases(tasks: Iterable[TaskSnapshot], now: datetime) -> list[str]:
    """Ids of tasks whose holder's lease ran out at ``now`` (apply ``LeaseExpired`` to each)."""
    require_utc("now", now)
    return [
        t.task_id
        for t in tasks
        if t.state in LEASED_TASK_STATES and t.lease_until is not None and t.lease_until <= now
    ]


def timed_out_offers(tasks: Iterable[TaskSnapshot], now: datetime) -> list[str]:
    """Ids of offered tasks whose offer lapsed at ``now`` (apply ``OfferTimedOut`` to each)."""
    require_utc("now", now)
    return [
        t.task_id
        for t in tasks
        if t.state is TaskState.OFFERED and t.offer_until is not None and t.offer_until <= now
    ]
