"""Typed, strict conversion between frozen message dataclasses and JSON values.

Owns ``InvalidMessage`` (why a received message was dropped) and the field checks every bus
message goes through: exact JSON types (a bool is not an int), finite numbers, bounded strings.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from fabnet.errors import InvalidInput

MAX_STR_LEN = 4096  # characters, for any string field without its own bound
MAX_ITEMS = 1024  # elements in any list field
MAX_ABS_INT = 2**53  # the integers every JSON peer represents exactly


class DropReason(enum.StrEnum):
    """Why a received message was rejected; the client counts drops per reason."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_VERSION = "bad_version"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_TOPIC = "bad_topic"
    WRONG_TOPIC = "wrong_topic"  # a valid type on a topic that does not carry it
    MACHINE_MISMATCH = "machine_mismatch"  # payload names a machine other than its topic's
    UNHANDLED = "unhandled"  # valid, but no handler is registered for its topic


class InvalidMessage(InvalidInput):
    """A received MQTT message breaks the v1 contract; ``reason`` is a ``DropReason``."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Pattern:
    """Annotation: the string must match ``regex`` entirely; ``what`` describes it in errors."""

    regex: str
    what: str

    def check(self, value: str, path: str) -> None:
        if re.fullmatch(self.regex, value) is None:
            raise InvalidMessage(
                DropReason.BAD_FIELD, f"{path} must be {self.what}, got {value!r:.80}"
            )


@dataclass(frozen=True)
class Range:
    """Annotation: the number must lie in ``lo..hi`` (inclusive)."""

    lo: float
    hi: float

    def check(self, value: float, path: str) -> None:
        if not self.lo <= value <= self.hi:
            raise InvalidMessage(
                DropReason.BAD_FIELD, f"{path} must be {self.lo:g}..{self.hi:g}, got {value!r:.40}"
            )


@dataclass(frozen=True)
class Items:
    """Annotation: the list must hold ``lo..hi`` items (inclusive)."""

    lo: int
    hi: int

    def check(self, value: tuple[Any, ...], path: str) -> None:
        if not self.lo <= len(value) <= self.hi:
            raise InvalidMessage(
                DropReason.BAD_FIELD,
                f"{path} must hold {self.lo}..{self.hi} items, got {len(value)}",
            )


def _fail(path: str, expected: str, value: Any) -> InvalidMessage:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidMessage(DropReason.BAD_FIELD, f"{path} must be {expected}, got {shown}")


def _is_optional(tp: Any) -> Any | None:
    """Return X when ``tp`` is ``X | None``, else None."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


def _to_str(value: Any, path: str) -> str:
    if type(value) is not str:
        raise _fail(path, "a string", value)
    if len(value) > MAX_STR_LEN:
        raise _fail(path, f"at most {MAX_STR_LEN} characters", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
        raise _fail(path, "valid Unicode", value) from None
    return value


def _to_number(tp: type, value: Any, path: str) -> int | float:
    if tp is int:
        if type(value) is not int:
            raise _fail(path, "an integer", value)
        if abs(value) > MAX_ABS_INT:
            raise _fail(path, "an integer within ±2**53", value)
        return value
    if type(value) not in (int, float):
        raise _fail(path, "a number", value)
    number = float(value) if abs(value) <= 1e300 else math.inf
    if not math.isfinite(number):
        raise _fail(path, "a finite number", value)
    return number


def _to_datetime(value: Any, path: str) -> datetime:
    text = _to_str(value, path)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, "an ISO-8601 time", value) from None
    if when.tzinfo is None:
        raise _fail(path, "an ISO-8601 time with a UTC offset", value)
    return when.astimezone(UTC)


def from_json(tp: Any, value: Any, path: str) -> Any:
    """Convert the JSON value ``value`` to type ``tp``; raises InvalidMessage naming ``path``."""
    if get_origin(tp) is Annotated:
        base, *checks = get_args(tp)
        result = from_json(base, value, path)
        for check in checks:
            check.check(result, path)
        return result
    inner = _is_optional(tp)
    if inner is not None:
        return None if value is None else from_json(inner, value, path)
    if tp is bool:
        if type(value) is not bool:
            raise _fail(path, "true or false", value)
        return value
    if tp in (int, float):
        return _to_number(tp, value, path)
    if tp is str:
        return _to_str(value, path)
    if tp is datetime:
        return _to_datetime(value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        if type(value) is not str or value not in allowed:
            raise _fail(path, f"one of {allowed}", value)
        return tp(value)
    if get_origin(tp) is tuple:
        item_tp = get_args(tp)[0]
        if type(value) is not list:
            raise _fail(path, "a list", value)
        if len(value) > MAX_ITEMS:
            raise _fail(path, f"a list of at most {MAX_ITEMS} items", f"{len(value)} items")
        return tuple(from_json(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if type(value) is not dict:
            raise _fail(path, "an object", value)
        return build(tp, value, path + ".")
    raise TypeError(f"schema cannot convert {tp!r} at {path}")  # a bug in a message class


@functools.cache
def _field_specs(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, annotated type, has a default) of each init field; cached, hints are slow."""
    hints = get_type_hints(cls, include_extras=True)
    return tuple(
        (
            f.name,
            hints[f.name],
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    )


def build(cls: type, obj: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a JSON object: every field checked, keys ``cls`` does not
    define ignored (tolerant reader), fields with defaults optional. Raises InvalidMessage."""
    kwargs: dict[str, Any] = {}
    for name, tp, has_default in _field_specs(cls):
        if name not in obj:
            if has_default:
                continue
            raise InvalidMessage(DropReason.MISSING_FIELD, f"{prefix}{name} is missing")
        kwargs[name] = from_json(tp, obj[name], prefix + name)
    return cls(**kwargs)


def to_json(value: Any) -> Any:
    """Turn a message dataclass (and what it holds) into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


def format_time(when: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix; raises InvalidInput for a naive datetime."""
    if when.tzinfo is None:
        raise InvalidInput(f"time must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
