"""Dashboard sessions kept on the server: a signed cookie alone would still log in after
log-out (whoever copied it keeps it), so the cookie names a row here that log-out ends."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from fabnet.core.timeutil import require_utc
from fabnet.store.account_models import WebSessionRow
from fabnet.store.database import Database

SESSION_ID_BYTES = 32
SESSION_MAX_AGE = timedelta(days=31)  # as Flask's permanent session cookie


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class WebSessions:
    """Start, look up and end dashboard sessions; raw ids are never stored."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, user_id: str, now: datetime) -> str:
        """A new session of ``user_id``; returns the raw id for the cookie."""
        raw = secrets.token_urlsafe(SESSION_ID_BYTES)
        row = WebSessionRow(
            id_sha256=_digest(raw),
            user_id=user_id,
            created_at=require_utc("now", now),
            ended_at=None,
        )
        with self._db.write() as s:
            s.add(row)
        return raw

    def user_id(self, raw: str, now: datetime) -> str | None:
        """The user of a live session (not ended, younger than SESSION_MAX_AGE), or None."""
        query = select(WebSessionRow.user_id).where(
            WebSessionRow.id_sha256 == _digest(raw),
            WebSessionRow.ended_at.is_(None),
            WebSessionRow.created_at > now - SESSION_MAX_AGE,
        )
        with self._db.read() as s:
            return s.scalar(query)

    def end(self, raw: str, now: datetime) -> None:
        """End one session (log-out); ending it again changes nothing."""
        self._end(WebSessionRow.id_sha256 == _digest(raw), now)

    def end_all(self, user_id: str, now: datetime) -> None:
        """End every session of ``user_id`` (their password changed)."""
        self._end(WebSessionRow.user_id == user_id, now)

    def _end(self, which: object, now: datetime) -> None:
        with self._db.write() as s:
            s.execute(
                update(WebSessionRow)
                .where(which, WebSessionRow.ended_at.is_(None))  # type: ignore[arg-type]
                .values(ended_at=require_utc("now", now))
            )
