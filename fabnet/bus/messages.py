"""The v1 message envelopes (DESIGN.md §3): one frozen dataclass per type, ``encode``/``decode``.

Every message is ``{"v": 1, "type": ..., "id": <uuid4 hex>, "ts": <ISO-8601 UTC>, ...fields}``.
Decoding is strict about everything it reads (types, ranges, ids, the topic the message came
on) and tolerant of keys it does not know: they are ignored, so a v1 peer may add an optional
field without breaking older peers; anything incompatible must bump ``v``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, NoReturn, TypeVar

from fabnet.bus.schema import DropReason, InvalidMessage, Pattern, Range, build, to_json
from fabnet.bus.topics import ID_REGEX, Topic, TopicKind, parse
from fabnet.core.states import FailureCause
from fabnet.errors import InvalidInput
from fabnet.profiles import MachineKind

__all__ = [
    "DropReason",
    "FailureCause",
    "InvalidMessage",
    "MachineKind",
]  # re-exported; the rest is below

VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024

Ident = Annotated[str, Pattern(ID_REGEX, "1-64 letters, digits, '_' or '-'")]
MessageId = Annotated[str, Pattern(r"[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}", "a UUID")]
Sha256 = Annotated[str, Pattern(r"[0-9a-f]{64}", "64 lowercase hex digits (sha256)")]
Name = Annotated[str, Pattern(r"[^\x00-\x1f\x7f]{1,64}", "1-64 printable characters")]
Label = Annotated[str, Pattern(r"[^\x00-\x1f\x7f]{1,256}", "1-256 printable characters")]
Url = Annotated[str, Pattern(r"https?://[^\s]{1,2040}", "an http(s) URL without spaces")]
Token = Annotated[str, Pattern(r"[A-Za-z0-9_.~+/=-]{16,512}", "16-512 URL-safe characters")]
Attempt = Annotated[int, Range(1, 1000)]
Count = Annotated[int, Range(0, 2**53)]
Percent = Annotated[float, Range(0, 100)]
Amount = Annotated[float, Range(0, 1e12)]  # grams, seconds: never negative
Coordinate = Annotated[float, Range(-1e6, 1e6)]  # mm
TempC = Annotated[float, Range(-100, 2000)]


def new_message_id() -> str:
    """A fresh message id: uuid4 hex."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


class AgentState(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"


class MachineState(enum.Enum):
    OFFLINE = "offline"
    IDLE = "idle"
    BUSY = "busy"
    PAUSED = "paused"
    ERROR = "error"


class HubState(enum.Enum):
    ONLINE = "online"
    GONE = "gone"


@dataclass(frozen=True)
class Xyz:
    """A point or an extent in mm."""

    x: Coordinate
    y: Coordinate
    z: Coordinate


@dataclass(frozen=True)
class Capabilities:
    """What a machine can do, as the hub matches on: profile id, kind, build volume (mm),
    nozzle or tool diameter (mm), materials its maker's policy accepts, and that policy."""

    profile: Ident
    kind: MachineKind
    volume_mm: Xyz
    nozzle_mm: Annotated[float, Range(0.01, 100)] | None
    materials: tuple[Name, ...]
    # The maker's policy, so the hub offers only what the agent would accept (the agent
    # still decides): driver name, longest task (h; None = no limit), whether offers are
    # accepted automatically, availability windows as 5-field cron expressions.
    driver: Name = "sim"
    max_task_hours: Annotated[float, Range(0.001, 10000)] | None = None
    auto_accept: bool = True
    windows: tuple[Label, ...] = ()


_M = TypeVar("_M", bound="Message")


@dataclass(frozen=True, kw_only=True)
class Message:
    """Envelope fields shared by every message; ``TYPE`` and ``KIND`` say what and where."""

    TYPE: ClassVar[str] = ""
    KIND: ClassVar[TopicKind]

    id: MessageId = field(default_factory=new_message_id)
    ts: datetime = field(default_factory=utc_now)

    def restamped(self: _M) -> _M:
        """The same content with a new id and the current time (for re-publishing state)."""
        return dataclasses.replace(self, id=new_message_id(), ts=utc_now())


@dataclass(frozen=True, kw_only=True)
class AgentStatus(Message):
    TYPE = "agent.status"
    KIND = TopicKind.AGENT_STATUS
    state: AgentState
    version: Name
    machines: tuple[Ident, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MachineStatus(Message):
    TYPE = "machine.status"
    KIND = TopicKind.MACHINE_STATUS
    machine: Ident
    state: MachineState
    capabilities: Capabilities
    materials_loaded: tuple[Name, ...] = ()
    task_id: Ident | None = None


@dataclass(frozen=True, kw_only=True)
class MachineTelemetry(Message):
    """Temperatures in °C, spindle in rpm, position in mm; None where the machine has none."""

    TYPE = "machine.telemetry"
    KIND = TopicKind.TELEMETRY
    machine: Ident
    task_id: Ident | None = None
    percent: Percent | None = None
    hotend_c: TempC | None = None
    hotend_target_c: TempC | None = None
    bed_c: TempC | None = None
    bed_target_c: TempC | None = None
    spindle_rpm: Annotated[float, Range(0, 1e6)] | None = None
    position_mm: Xyz | None = None


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
class MachineCommand(Message):
    """Base of the hub's commands about one machine rather than one task."""

    KIND = TopicKind.COMMANDS
    machine: Ident


@dataclass(frozen=True, kw_only=True)
class MachineConfigure(MachineCommand):
    """The maker changed the machine on the hub: loaded ``material``, and the policy the agent
    decides offers by (accepted ``materials``, longest task in h with None for no limit,
    ``auto_accept``, availability ``windows`` as 5-field cron expressions)."""

    TYPE = "machine.configure"
    material: Name
    materials: tuple[Name, ...]
    max_task_hours: Annotated[float, Range(0.001, 10000)] | None = None
    auto_accept: bool = True
    windows: tuple[Label, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MachineHeld(MachineCommand):
    """The hub stopped offering work to this machine: it failed ``failures`` times in a row
    (issue 10). Nothing to do but tell the maker; the maker or an operator releases the hold
    on the hub (``POST /api/v1/machines/<agent>/<machine>/release-hold``)."""

    TYPE = "machine.held"
    failures: Annotated[int, Range(1, 1000)]
    reason: Annotated[str, Pattern(r"[^\x00-\x1f\x7f]{1,500}", "1-500 printable characters")]


@dataclass(frozen=True, kw_only=True)
class HubStatus(Message):
    TYPE = "hub.status"
    KIND = TopicKind.HUB_STATUS
    hub_id: Ident
    state: HubState
    version: Name


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        AgentStatus,
        MachineStatus,
        MachineTelemetry,
        TaskAccepted,
        TaskDeclined,
        TaskStarted,
        TaskProgress,
        TaskCompleted,
        TaskFailed,
        TaskOffer,
        TaskAssign,
        TaskCancel,
        TaskPause,
        TaskResume,
        MachineConfigure,
        MachineHeld,
        HubStatus,
    )
}


def encode(msg: Message) -> bytes:
    """Serialise ``msg`` to UTF-8 JSON. Raises InvalidInput if ``msg`` holds a value its
    receiver would reject (checked here so the sender learns, not the receiver's counter)."""
    if type(msg) not in MESSAGE_TYPES.values():
        raise InvalidInput(f"cannot encode {type(msg).__name__}: not a v1 message type")
    obj = {"v": VERSION, "type": msg.TYPE, **to_json(msg)}
    try:
        build(type(msg), obj)
    except InvalidMessage as exc:
        raise InvalidInput(f"{msg.TYPE}: {exc}") from None
    data = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"{msg.TYPE} is {len(data)} bytes, over the {MAX_PAYLOAD_BYTES} limit")
    return data


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in an object")
    return obj


def _load_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(
            DropReason.TOO_LARGE, f"payload is {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(DropReason.NOT_UTF8, f"payload is not UTF-8: {exc}") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise InvalidMessage(DropReason.NOT_JSON, f"payload is not JSON: {reason}") from None
    if type(obj) is not dict:
        raise InvalidMessage(DropReason.NOT_OBJECT, f"payload is a {type(obj).__name__}")
    return obj


def decode(topic: str, payload: bytes) -> Message:
    """Parse and validate one received message against the topic it arrived on.

    See ``decode_at``; raises InvalidMessage (reason BAD_TOPIC) for a topic outside v1."""
    return decode_at(parse(topic), payload)


def decode_at(where: Topic, payload: bytes) -> Message:
    """Validate one received message against its already parsed topic ``where``.

    Raises InvalidMessage (its ``reason`` a DropReason) for: payloads over 256 KiB, invalid UTF-8 or JSON (NaN/Infinity and duplicate keys included),
    a non-object, ``v`` other than 1, an unknown ``type``, a type that does not belong on this
    topic, a missing or mistyped field, and a payload ``machine`` other than the topic's.
    """
    obj = _load_object(payload)
    version = obj.get("v")
    if type(version) is not int or version != VERSION:
        raise InvalidMessage(DropReason.BAD_VERSION, f"v must be {VERSION}, got {version!r:.40}")
    type_name = obj.get("type")
    cls = MESSAGE_TYPES.get(type_name) if type(type_name) is str else None
    if cls is None:
        raise InvalidMessage(DropReason.UNKNOWN_TYPE, f"unknown type {type_name!r:.60}")
    if cls.KIND is not where.kind:
        raise InvalidMessage(
            DropReason.WRONG_TOPIC, f"{cls.TYPE} does not belong on {where.kind.value} topic"
        )
    for key in ("id", "ts"):
        if key not in obj:
            raise InvalidMessage(DropReason.MISSING_FIELD, f"{key} is missing")
    msg: Message = build(cls, obj)
    machine = getattr(msg, "machine", None)
    if where.machine is not None and machine != where.machine:
        raise InvalidMessage(
            DropReason.MACHINE_MISMATCH,
            f"{cls.TYPE} names machine {machine!r} on the topic of {where.machine!r}",
        )
    return msg
