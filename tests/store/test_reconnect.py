"""No ping per checkout, yet a store outlives its PostgreSQL connections being killed: the
pool drops a connection whose socket the server closed, and a read retries once when its
connection dies under it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session

from fabnet.core.events import TaskOffered
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, TaskState
from fabnet.core.tasks import Transition
from fabnet.store import Store

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
JOB = "d" * 32
Fleet = Callable[..., list[Machine]]
pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)


@pytest.fixture
def admin(store: Store) -> Iterator[Engine]:
    """A separate engine on the same database that kills the store's connections."""
    engine = create_engine(store.db.url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def terminate(conn: Connection, where: str) -> int:
    """Terminate the backends of this database matching ``where``; wait until they are
    gone (the signal is asynchronous). Returns how many there were."""
    pids = list(
        conn.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                f"AND pid <> pg_backend_pid() AND {where}"
            )
        )
    )
    for pid in pids:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    deadline = time.monotonic() + 30
    while pids and time.monotonic() < deadline:
        alive = conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": pids}
        )
        if not alive:
            break
        time.sleep(0.05)
    return len(pids)


def test_no_ping_per_checkout(store: Store) -> None:
    assert store.db.engine.pool._pre_ping is False  # noqa: SLF001 - the point of issue 9


def test_store_works_after_its_connections_are_terminated(
    store: Store, admin: Engine, fleet: Fleet
) -> None:
    fleet(makers=1, per_maker=1)
    spec = JobSpec(
        job_id=JOB,
        requester="req",
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=2,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.1,
    )
    store.jobs.submit(spec, NOW)
    task = store.tasks.find(job_id=JOB)[0].task_id
    with admin.connect() as conn:
        assert terminate(conn, "true") >= 1  # the store's pooled connection(s)
    moved = store.apply_event(task, TaskOffered(machine_id="k0-m0"), NOW)  # a write: no retry
    assert isinstance(moved, Transition)
    with admin.connect() as conn:
        assert terminate(conn, "true") >= 1
    assert store.jobs.get(JOB).tasks_by_state == {TaskState.QUEUED: 1, TaskState.OFFERED: 1}
    assert store.tasks.get(task).state is TaskState.OFFERED


def test_a_read_retries_once_when_its_connection_dies(store: Store, admin: Engine) -> None:
    calls: list[int] = []

    def work(s: Session) -> int:
        pid = int(s.scalar(text("SELECT pg_backend_pid()")) or 0)
        calls.append(pid)
        if len(calls) == 1:
            with admin.connect() as conn:
                assert terminate(conn, f"pid = {pid}") == 1
        return int(s.scalar(text("SELECT count(*) FROM jobs")) or 0)

    assert store.db.reading(work) == 0
    assert len(calls) == 2 and calls[0] != calls[1]
