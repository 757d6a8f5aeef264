"""An in-process agent against a real Mosquitto and a hub peer: a task's whole life."""

from __future__ import annotations

import hashlib
import time

from agent_harness import assign, cube_gcode, machine_toml, new_id, offer
from agent_rig import Rig, RigFactory

from fabnet.bus.messages import (
    MachineState,
    MachineStatus,
    MachineTelemetry,
    TaskAccepted,
    TaskCompleted,
    TaskProgress,
    TaskStarted,
)
from fabnet.gcode import analyse
from fabnet.profiles import FdmMaterial, load_materials, load_profile


def run_cube(rig: Rig, machine: str, task: str) -> bytes:
    body = cube_gcode()
    rig.hub.send(offer(machine, task))
    rig.hub.wait_for(TaskAccepted, task_id=task)
    url = rig.artifacts.add(f"{task}.gcode", body)
    rig.hub.send(assign(machine, task, url, body))
    return body


def test_offer_accepted_then_assigned_task_runs_to_completion(make_rig: RigFactory) -> None:
    rig = make_rig(machine_toml("mk3s-1", speed=1500))
    rig.hub.wait_for(MachineStatus, machine="mk3s-1", state=MachineState.IDLE)
    task = new_id()
    body = run_cube(rig, "mk3s-1", task)

    started = rig.hub.wait_for(TaskStarted, task_id=task)
    assert (started.machine, started.attempt) == ("mk3s-1", 1)
    done = rig.hub.wait_for(TaskCompleted, timeout_s=15, task_id=task)
    pla = load_materials().get("PLA")
    assert isinstance(pla, FdmMaterial)
    expected = analyse(body.decode(), load_profile("prusa_mk3s"), pla)
    assert abs(done.grams - expected.grams) < 1e-6
    assert 3.0 < done.grams < 5.0
    assert done.sha256 == hashlib.sha256(body).hexdigest()
    assert done.machine_s > 0.5
    progress = rig.hub.messages(TaskProgress, task_id=task)
    assert progress, "no task.progress while running ~0.9 s"
    assert all(0 <= p.percent <= 100 for p in progress)
    assert progress[-1].lines_total == expected.lines
    busy = rig.hub.wait_for(MachineStatus, state=MachineState.BUSY, machine="mk3s-1")
    assert busy.task_id == task
    rig.hub.wait_for(MachineStatus, where=lambda m: m.ts > done.ts, state=MachineState.IDLE)
    assert rig.hub.messages(MachineTelemetry, machine="mk3s-1")
    deadline = time.monotonic() + 5
    while rig.agent.outbox.unconfirmed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rig.agent.outbox.unconfirmed() == 0
    assert rig.agent.journal.pending() == []
