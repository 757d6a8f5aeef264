"""Identifiers: every id in fabnet is a uuid4 in hex (32 lowercase hex digits)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """Return a fresh uuid4 hex id, e.g. for a task, a job or an event."""
    return uuid.uuid4().hex
