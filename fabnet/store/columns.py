"""Column types: UTC timestamps that come back timezone-aware on every database; and the one
SQL test for a value that names a peer hub (``peer:<hub>``, issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from fabnet.core.ids import PEER_PREFIX
from fabnet.errors import InvalidInput


class UTCDateTime(TypeDecorator[datetime]):
    """Stores an aware datetime as naive UTC; loads it back as aware UTC.

    Raises ``InvalidInput`` when handed a naive datetime, so local times never slip in.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(f"timestamps must be timezone-aware, got naive {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def names_a_peer(column: Any) -> ColumnElement[bool]:
    """SQL: ``column`` (a machine id, a requester, an account) names a peer hub — the
    pseudo-machine holding a task a peer makes, or the requester of work made for a peer."""
    return column.startswith(PEER_PREFIX, autoescape=True)
