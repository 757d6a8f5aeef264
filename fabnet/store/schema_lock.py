"""One schema change at a time across processes.

Several hub processes (``fabnet hub --role api|dispatcher``) started together on an empty
PostgreSQL database would each run ``CREATE TABLE`` and all but one crash on the duplicate. On
PostgreSQL they queue on a session-level advisory lock instead, so the second one finds the
tables made; SQLite has one process by design and needs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

if TYPE_CHECKING:
    from fabnet.store.database import Database

# Any constant 64-bit key shared by every fabnet process: "fabnet schema" in ASCII, truncated.
SCHEMA_LOCK_KEY = 0x66616E6574736368


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the schema lock (PostgreSQL) while the body creates or alters tables."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()


class LazyTables:
    """Creates ``tables`` on ``db`` on first use, not on construction, under the schema lock:
    a hub whose database does not answer yet must still start (and say so on /healthz), and
    the tables of a feature a hub never uses (federation) are never made."""

    def __init__(self, db: Database, tables: Sequence[Any]) -> None:
        self._db = db
        self._tables = tuple(tables)
        self._lock = threading.Lock()
        self._ready = False

    def database(self) -> Database:
        """``db``, its tables made if they were not yet."""
        if not self._ready:
            with self._lock, schema_lock(self._db.engine):
                for table in self._tables:
                    table.create(self._db.engine, checkfirst=True)
                self._ready = True
        return self._db
