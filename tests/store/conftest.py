"""Store fixtures: every store test runs on a SQLite file and on a throwaway PostgreSQL db."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_support import fresh_pg_database
from sqlalchemy import create_engine, text

from fabnet.core.designs import Design
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind
from fabnet.store import Store

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this run (``tests/pg_support.py``), dropped at the end."""
    yield from fresh_pg_database()


def _reset_pg(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A ``Store`` with empty tables on SQLite (file in tmp_path) or PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'var' / 'fabnet.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _reset_pg(url)
    s = Store(url)
    try:
        yield s
    finally:
        s.close()


DESIGN = Design(design_id="ab" * 32, name="cube", bbox_mm=(20.0, 20.0, 20.0), license="CC0-1.0")


def add_fleet(store: Store, makers: int = 2, per_maker: int = 2) -> list[Machine]:
    """Makers ``k0..`` with PLA FDM machines ``k0-m0..``, and the cube design ``DESIGN``."""
    machines = []
    for k in range(makers):
        store.catalog.add_maker(f"maker {k}", NOW, maker_id=f"k{k}")
        for i in range(per_maker):
            m = Machine(
                machine_id=f"k{k}-m{i}",
                maker_id=f"k{k}",
                kind=MachineKind.FDM,
                volume_mm=(250.0, 210.0, 210.0),
                nozzle_mm=0.4,
                materials=frozenset({"PLA"}),
                profile="prusa_mk3s",
            )
            machines.append(store.catalog.upsert_machine(m))
    store.catalog.add_design(DESIGN, NOW)
    return machines


AddFleet = Callable[..., list[Machine]]


@pytest.fixture
def fleet(store: Store) -> AddFleet:
    """``fleet(makers=2, per_maker=2)`` adds makers, machines and the design to ``store``."""

    def add(makers: int = 2, per_maker: int = 2) -> list[Machine]:
        return add_fleet(store, makers, per_maker)

    return add
