"""The v1 envelope every bus message shares, and the field types messages are built from.

Every message is ``{"v": 1, "type": ..., "id": <uuid4 hex>, "ts": <ISO-8601 UTC>, ...fields}``
(DESIGN.md §3). The annotated field types carry their own checks (``schema.Pattern``,
``schema.Range``, ``schema.Items``), so a class's annotations are its whole validation.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, ClassVar, TypeVar

from fabnet.bus.schema import Pattern, Range
from fabnet.bus.topics import ID_REGEX, TopicKind

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
