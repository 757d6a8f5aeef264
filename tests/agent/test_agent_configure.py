"""``machine.configure`` from the hub: the agent announces the new material and policy, decides
the next offers by them, and keeps them over agent.toml across a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agent_harness import machine_toml, new_id, offer
from agent_rig import FAST_FETCH, Rig, RigFactory

from fabnet.agent.process import Agent
from fabnet.bus.messages import (
    MachineConfigure,
    MachineStatus,
    TaskAccepted,
    TaskCancel,
    TaskDeclined,
)


def _status_after(
    rig: Rig, since: datetime, loaded: str, accepted: tuple[str, ...]
) -> MachineStatus:
    return rig.hub.wait_for(
        MachineStatus,
        machine="m",
        where=lambda s: (
            s.ts >= since
            and s.materials_loaded == (loaded,)
            and s.capabilities.materials == accepted
        ),
    )


def _declined(rig: Rig, material: str, est_s: float = 1800.0) -> str:
    task = new_id()
    rig.hub.send(offer("m", task, material, est_s))
    reason = rig.hub.wait_for(TaskDeclined, task_id=task).reason
    assert not rig.hub.messages(TaskAccepted, task_id=task)
    return reason


def test_configure_changes_status_offers_and_survives_a_restart(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("m", material="PLA", materials=("PLA",), max_hours=8))
    assert _declined(rig, "PETG") == "material PETG not loaded (PLA)"

    since = datetime.now(UTC)
    rig.hub.send(MachineConfigure(machine="m", material="PETG", materials=("PETG",),
                                  max_task_hours=None, windows=("* * * * *",)))  # fmt: skip
    caps = _status_after(rig, since, "PETG", ("PETG",)).capabilities
    assert (caps.max_task_hours, caps.auto_accept, caps.windows) == (None, True, ("* * * * *",))
    long_petg = new_id()
    rig.hub.send(offer("m", long_petg, "PETG", est_s=20 * 3600))  # no hour limit any more
    rig.hub.wait_for(TaskAccepted, task_id=long_petg)
    rig.hub.send(TaskCancel(machine="m", task_id=long_petg, attempt=1))

    since = datetime.now(UTC)
    rig.hub.send(MachineConfigure(machine="m", material="PLA", materials=("PETG",),
                                  max_task_hours=2.0))  # fmt: skip
    caps = _status_after(rig, since, "PLA", ("PETG",)).capabilities
    assert (caps.max_task_hours, caps.windows) == (2.0, ())
    assert _declined(rig, "PLA") == "material PLA not accepted by policy (PETG)"
    saved = json.loads((rig.config.data_dir / "machine_overrides.json").read_text())
    assert saved["m"]["materials"] == ["PETG"] and saved["m"]["material"] == "PLA"

    rig.agent.stop(timeout_s=2)
    since = datetime.now(UTC)
    rig.agent = Agent(rig.config, fetch=FAST_FETCH)  # same agent.toml: PLA accepted, 8 h
    rig.agent.start()
    caps = _status_after(rig, since, "PLA", ("PETG",)).capabilities
    assert caps.max_task_hours == 2.0
    assert _declined(rig, "PLA") == "material PLA not accepted by policy (PETG)"

    # a material the profile cannot take is refused: nothing changes
    rig.hub.send(MachineConfigure(machine="m", material="Unobtainium", materials=("PLA",)))
    assert _declined(rig, "PLA") == "material PLA not accepted by policy (PETG)"
    assert json.loads((rig.config.data_dir / "machine_overrides.json").read_text()) == saved
