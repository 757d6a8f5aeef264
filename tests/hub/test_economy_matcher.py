"""What the budget guard in the dispatcher's offer round (issue 11) looks at: the machine
index's available machines."""

from __future__ import annotations

from datetime import UTC, datetime

from fabnet.core.machines import Machine
from fabnet.core.matching import MachineIndex, TaskRequest
from fabnet.core.states import MachineKind, MachineState


def test_the_index_lists_the_machines_a_match_may_use() -> None:
    def printer(name: str, state: MachineState) -> Machine:
        return Machine(f"k/{name}", "k", MachineKind.FDM, (250.0, 210.0, 210.0), 0.4,
                       frozenset({"PLA"}), state=state)  # fmt: skip

    index = MachineIndex()
    for name, state in (("a", MachineState.IDLE), ("b", MachineState.IDLE),
                        ("c", MachineState.BUSY)):  # fmt: skip
        index.upsert(printer(name, state))
    assert [x.machine_id for x in index.available()] == ["k/a", "k/b"]
    request = TaskRequest("t1", MachineKind.FDM, "PLA", (20.0, 20.0, 20.0), 0.5)
    (chosen,) = index.match([request], datetime.now(UTC))
    assert [x.machine_id for x in index.available()] == sorted({"k/a", "k/b"} - {chosen.machine_id})
