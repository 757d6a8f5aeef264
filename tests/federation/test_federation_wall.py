"""The pseudo-machine ``peer:<hub>`` holding tasks a peer hub makes (issue 12) is no maker's
machine: the overview's machine wall and machine counts leave it out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState
from fabnet.store import Store
from fabnet.store.overview import OverviewReads
from fabnet.store.peer_reports import ensure_peer_machine


def test_the_peer_pseudo_machine_is_not_on_the_wall_nor_counted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    try:
        now = datetime.now(UTC)
        store.catalog.add_maker("rosa", now, maker_id="rosa")
        store.catalog.upsert_machine(Machine("rosa/r1", "rosa", MachineKind.CNC, (600.0, 400.0, 90.0),
                                             3.0, frozenset({"MDF"}), state=MachineState.IDLE))  # fmt: skip
        ensure_peer_machine(store.db, "beta", now)
        assert store.catalog.get_machine("peer:beta").state is MachineState.OFFLINE
        reads = OverviewReads(store.db)
        wall = reads.wall(10)
        assert [m.machine_id for m in wall.machines] == ["rosa/r1"]
        assert wall.total == 1
        assert reads.machine_counts() == {"cnc": {"idle": 1}}
    finally:
        store.close()
