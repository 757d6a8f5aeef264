"""Hub processes started together on an empty PostgreSQL database all come up (issue 9): the
schema is made under one advisory lock, so none crashes on another's ``CREATE TABLE``."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, text

from fabnet.store import Store
from fabnet.store.artifact_records import ArtifactRecords

STARTERS = 6


def _empty(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def test_stores_started_together_on_an_empty_database_all_start(pg_database: str) -> None:
    _empty(pg_database)
    gate = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def start(n: int) -> None:
        gate.wait()
        try:
            store = Store(pg_database)  # each its own engine and connections, like a process
            try:
                ArtifactRecords(store.db)
            finally:
                store.close()
        except BaseException as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(STARTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    store = Store(pg_database)
    try:
        assert store.jobs.find() == []
    finally:
        store.close()
