"""Messages about tasks: the agent's events on one attempt, the hub's commands about one, and
the hub's acknowledgement of the events it has committed (``events.ack``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fabnet.bus.envelope import (
    Amount,
    Attempt,
    Count,
    Ident,
    Label,
    Message,
    MessageId,
    Name,
    Percent,
    Sha256,
    Token,
    Url,
)
from fabnet.bus.schema import Items
from fabnet.bus.topics import TopicKind
from fabnet.core.states import FailureCause

MAX_ACK_IDS = 500  # ids in one events.ack: the hub splits a larger batch


@dataclass(frozen=True, kw_only=True)
class TaskEvent(Message):
    """Base of the events an agent reports about one attempt of one task on one machine."""

    KIND = TopicKind.EVENTS
    machine: Ident
    task_id: Ident
    attempt: Attempt


@dataclass(frozen=True, kw_only=True)
class TaskAccepted(TaskEvent):
    TYPE = "task.accepted"


@dataclass(frozen=True, kw_only=True)
class TaskDeclined(TaskEvent):
    TYPE = "task.declined"
    reason: str


@dataclass(frozen=True, kw_only=True)
class TaskStarted(TaskEvent):
    TYPE = "task.started"


@dataclass(frozen=True, kw_only=True)
class TaskProgress(TaskEvent):
    """Progress of a running attempt; times in seconds."""

    TYPE = "task.progress"
    percent: Percent
    lines_done: Count = 0
    lines_total: Count = 0
    elapsed_s: Amount = 0.0
    remaining_s: Amount | None = None


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(TaskEvent):
    """A finished attempt: filament used (g), machine time (s), sha256 of the file that ran."""

    TYPE = "task.completed"
    grams: Amount
    machine_s: Amount
    sha256: Sha256


# An agent that stops (SIGTERM, SIGINT) makes its machines safe and sends, for each task it
# held, a task.failed whose reason starts with this: the hub requeues the task at once and does
# not count the attempt as failed. A hub that predates it requeues it as an ordinary failure.
TASK_RELEASED_PREFIX = "released by the agent: "


@dataclass(frozen=True, kw_only=True)
class TaskFailed(TaskEvent):
    """A failed attempt; ``raw`` keeps the firmware's own line where there is one. A reason
    that starts with ``TASK_RELEASED_PREFIX`` hands the task back instead (see there).
    ``cause`` is the reason code (issue 10); optional, so an older agent's message still
    parses (the hub records it as ``unknown``), and a value outside ``FailureCause`` is
    rejected like any bad field."""

    TYPE = "task.failed"
    reason: str
    raw: str | None = None
    cause: FailureCause | None = None


# The events that move a task: the agent keeps each until an events.ack names it.
MOVING_EVENTS: tuple[type[TaskEvent], ...] = (
    TaskAccepted,
    TaskDeclined,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
)


@dataclass(frozen=True, kw_only=True)
class TaskCommand(Message):
    """Base of the hub's commands to an agent, each naming its machine, task and attempt."""

    KIND = TopicKind.COMMANDS
    machine: Ident
    task_id: Ident
    attempt: Attempt


@dataclass(frozen=True, kw_only=True)
class TaskOffer(TaskCommand):
    """An offer to accept or decline: estimates in grams and seconds; deadline in UTC."""

    TYPE = "task.offer"
    design_id: Ident
    design_name: Label
    material: Name
    est_grams: Amount
    est_machine_s: Amount
    deadline: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TaskAssign(TaskCommand):
    """Where to fetch the G-code: URL on the hub, one-task token, size (bytes), sha256."""

    TYPE = "task.assign"
    url: Url
    token: Token
    size_bytes: Count
    sha256: Sha256
    profile: Ident


@dataclass(frozen=True, kw_only=True)
class TaskCancel(TaskCommand):
    TYPE = "task.cancel"


@dataclass(frozen=True, kw_only=True)
class TaskPause(TaskCommand):
    TYPE = "task.pause"


@dataclass(frozen=True, kw_only=True)
class TaskResume(TaskCommand):
    TYPE = "task.resume"


@dataclass(frozen=True, kw_only=True)
class EventsAck(Message):
    """Hub → agent (on the agent's commands topic, QoS 1, not retained): the message ids of
    this agent's task events the hub has committed — applied, recognised as duplicates, or
    refused for good (unknown task, bad figures) — so the agent may forget them. Until an ack
    names an event, the agent re-sends it; the broker's PUBACK is not enough (issue 9)."""

    TYPE = "events.ack"
    KIND = TopicKind.COMMANDS
    ids: Annotated[tuple[MessageId, ...], Items(1, MAX_ACK_IDS)]
