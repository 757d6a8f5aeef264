"""Secrets every hub process shares, one row each in ``hub_secrets``: the one-task token secret
(``fabnet.store.artifact_records``, which defines the table) and the dashboard's session key.

Whichever process asks first generates the secret; an insert that loses the race to another
process is dropped and everyone reads the row that won, so all processes hold the same value.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fabnet.store.artifact_records import HubSecretRow
from fabnet.store.database import Database


class HubSecrets:
    """Named shared secrets (hex strings) on ``db``; creates its table if the database lacks it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        HubSecretRow.__table__.create(db.engine, checkfirst=True)  # type: ignore[attr-defined]

    def get(self, name: str) -> str | None:
        with self._db.read() as s:
            return s.scalar(select(HubSecretRow.value_hex).where(HubSecretRow.name == name))

    def get_or_make(self, name: str, make: Callable[[], str]) -> str:
        """The secret ``name``; if there is none yet, ``make()`` (hex) is stored — unless
        another process stored one first, whose value is returned instead."""
        found = self.get(name)
        if found is not None:
            return found
        value = make()
        bytes.fromhex(value)  # ValueError for a value that is not hex, before it is stored
        try:
            with self._db.write() as s:
                if s.get(HubSecretRow, name) is None:
                    s.add(HubSecretRow(name=name, value_hex=value))
        except IntegrityError:
            pass  # another process inserted it between our look and our insert: theirs stands
        stored = self.get(name)
        assert stored is not None
        return stored
