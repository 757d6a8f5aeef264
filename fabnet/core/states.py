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
    REJECTED = "rejected"  # the requester sent the done task back to the queue (issue 11)


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


class FailureCause(StrEnum):
    """Why an attempt ended badly, as its own code (issue 10): what the agent saw on the
    machine, or what the hub or a person did. Reported by the agent with ``task.failed`` and
    kept on the attempt, so operators see why a machine fails and the hub can hold it."""

    FIRMWARE_FAULT = "firmware_fault"  # the firmware stopped: halted, kill(), an error
    THERMAL_FAULT = "thermal_fault"  # runaway, MINTEMP/MAXTEMP, heating failed, the watch
    LINK_LOST = "link_lost"  # the serial port or the machine's host stopped answering
    MACHINE_RESET = "machine_reset"  # the board restarted during the job
    REFUSED = "refused"  # before running: download, sha256 or safety check refused the file
    CANCELLED_BY_MAKER = "cancelled_by_maker"  # stopped at the machine by its maker
    CANCELLED_BY_HUB = "cancelled_by_hub"  # the task or its job was cancelled on the hub
    RELEASED = "released"  # handed back by a stopping agent (TASK_RELEASED_PREFIX)
    LEASE_EXPIRED = "lease_expired"  # the agent stopped reporting in time
    MACHINE_OFFLINE = "machine_offline"  # the machine or its agent went offline
    UNKNOWN = "unknown"  # a failure reported without a cause (an older agent)

    @property
    def counts_against_machine(self) -> bool:
        """True for the failures that say something about the machine, so that enough of
        them in a row put it on hold; a cancel, a hand-back or going offline do not."""
        return self not in _NOT_THE_MACHINES_FAULT


_NOT_THE_MACHINES_FAULT = frozenset(
    {
        FailureCause.CANCELLED_BY_MAKER,
        FailureCause.CANCELLED_BY_HUB,
        FailureCause.RELEASED,
        FailureCause.MACHINE_OFFLINE,
    }
)
