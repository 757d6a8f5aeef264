"""Checks on the times handed to the core: all are UTC-aware ``datetime``s."""

from __future__ import annotations

from datetime import UTC, datetime

from fabnet.errors import InvalidInput


def require_utc(name: str, when: datetime) -> datetime:
    """Return ``when`` converted to UTC; raise ``InvalidInput`` naming ``name`` if naive."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime, got naive {when!r}")
    return when.astimezone(UTC)


def parse_utc(name: str, text: str | None) -> datetime | None:
    """``text`` (ISO 8601 with a UTC offset, as a request carries it) as a UTC datetime; None
    for None. ``InvalidInput`` naming ``name`` for text that is no time or has no offset."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO-8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must include a time zone (e.g. +00:00), got {text!r}")
    return value.astimezone(UTC)
