"""The state and cause enums shared by tasks, jobs and machines (DESIGN.md §2)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """Where a task is in its life; ``done``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    OFFERED = "offered"
    CLAIMED = "claimed"
    PREPARING = "preparing"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for the states a task never leaves."""
        return self in FINAL_TASK_STATES

    @property
    def holds_lease(self) -> bool:
        """True while a machine holds the task under a lease (claimed, preparing, running)."""
        return self in LEASED_TASK_STATES


FINAL_TASK_STATES = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
LEASED_TASK_STATES = frozenset({TaskState.CLAIMED, TaskState.PREPARING, TaskState.RUNNING})


class MachineState(StrEnum):
    """What a machine reports about itself; only ``idle`` machines are matched."""

    OFFLINE = "offline"
    IDLE = "idle"
    BUSY = "busy"
    PAUSED = "paused"
    ERROR = "error"


class MachineKind(StrEnum):
    """The kind of fabrication a machine does."""

    FDM = "fdm"
    CNC = "cnc"


class JobState(StrEnum):
    """A job's state, always derived from its tasks (see ``fabnet.core.jobs.job_state``)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TransitionCause(StrEnum):
    """Why a task changed state (or, for ``progress``, why its lease moved)."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    OFFER_TIMEOUT = "offer_timeout"
    ASSIGNED = "assigned"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    ATTEMPT_FAILED = "attempt_failed"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    LEASE_EXPIRED = "lease_expired"
    MACHINE_OFFLINE = "machine_offline"
    RELEASED = "released"  # the agent handed the task back (it stopped, the machine is safe)
    CANCELLED = "cancelled"


class AttemptCause(StrEnum):
    """How an attempt (one claim of a task by one machine) ended."""

    DONE = "done"
    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"
    MACHINE_OFFLINE = "machine_offline"
    RELEASED = "released"  # handed back by a stopping agent; not counted in max_attempts
    CANCELLED = "cancelled"


class IgnoreReason(StrEnum):
    """Why an event left a task unchanged."""

    DUPLICATE = "duplicate"  # this event id was applied before
    FINAL = "final"  # the task is done, failed or cancelled
    WRONG_STATE = "wrong_state"  # the event does not apply to the task's state
    STALE = "stale"  # the event answers an older offer or another machine
    NOT_DUE = "not_due"  # a timeout event arrived before the deadline it checks
