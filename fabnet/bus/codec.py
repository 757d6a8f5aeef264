"""Encoding and strict decoding of v1 messages (DESIGN.md §3).

Decoding is strict about everything it reads (types, ranges, ids, the topic the message came
on) and tolerant of keys it does not know: they are ignored, so a v1 peer may add an optional
field without breaking older peers; anything incompatible must bump ``v``.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from fabnet.bus.envelope import MAX_PAYLOAD_BYTES, VERSION, Message
from fabnet.bus.machine_messages import (
    AgentStatus,
    HubStatus,
    MachineConfigure,
    MachineHeld,
    MachineStatus,
    MachineTelemetry,
)
from fabnet.bus.schema import DropReason, InvalidMessage, build, to_json
from fabnet.bus.task_messages import (
    EventsAck,
    TaskAccepted,
    TaskAssign,
    TaskCancel,
    TaskCompleted,
    TaskDeclined,
    TaskFailed,
    TaskOffer,
    TaskPause,
    TaskProgress,
    TaskResume,
    TaskStarted,
)
from fabnet.bus.topics import Topic, parse
from fabnet.errors import InvalidInput

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
        EventsAck,
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
