"""fabnet's error tree as HTTP status codes: one table for the API's JSON and the pages' HTML."""

from __future__ import annotations

from fabnet.errors import Conflict, DeviceError, FabnetError, InvalidInput, NotFound

STATUS_BY_ERROR: tuple[tuple[type[FabnetError], int], ...] = (
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (DeviceError, 502),
)


def status_for(exc: FabnetError) -> int:
    """The HTTP status for ``exc``; 500 for an error the table does not name."""
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
