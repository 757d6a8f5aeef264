"""Checks on the times handed to the core: all are UTC-aware ``datetime``s."""

from __future__ import annotations

from datetime import UTC, datetime

from fabnet.errors import InvalidInput


def require_utc(name: str, when: datetime) -> datetime:
    """Return ``when`` converted to UTC; raise ``InvalidInput`` naming ``name`` if naive."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime, got naive {when!r}")
    return when.astimezone(UTC)
