"""One schema change at a time across processes.

Several hub processes (``fabnet hub --role api|dispatcher``) started together on an empty
PostgreSQL database would each run ``CREATE TABLE`` and all but one crash on the duplicate. On
PostgreSQL they queue on a session-level advisory lock instead, so the second one finds the
tables made; SQLite has one process by design and needs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

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
