"""Columns added to existing tables after their first release: ``create_all`` makes missing
tables only, so a database from an older fabnet gets these with ``ALTER TABLE ... ADD``."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, inspect

from fabnet.store.job_counts import COLUMNS
from fabnet.store.models import Base

log = logging.getLogger(__name__)

# Every column added since a table was first created; each must be nullable (old rows).
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_attempts", "failure"),
    ("machines", "held_at"),
    ("machines", "hold_reason"),
    ("machines", "hold_cleared_at"),
    *(("jobs", name) for name in COLUMNS.values()),  # job_counts.backfill fills them in
)


def add_missing_columns(engine: Engine) -> list[str]:
    """Add each of ``ADDED_COLUMNS`` its table lacks (SQLite and PostgreSQL both take
    ``ADD COLUMN`` of a nullable column); returns "table.column" for each one added."""
    names: dict[str, set[str]] = {}
    inspector = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table, name in ADDED_COLUMNS:
            column = Base.metadata.tables[table].c[name]
            if table not in names:
                names[table] = {c["name"] for c in inspector.get_columns(table)}
            if column.name in names[table]:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}')
            added.append(f"{table}.{column.name}")
    for name in added:
        log.info("database upgraded: added column %s", name)
    return added
