"""Translate what agents say about their machines into the core's Machine values.

A machine's hub id is ``<agent>/<machine>``: agent ids are unique broker identities, machine
ids are unique within their agent. The maker is the agent.
"""

from __future__ import annotations

from datetime import datetime

from fabnet.bus import messages as msg
from fabnet.core.cron import CronExpr
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState

SEPARATOR = "/"


def hub_machine_id(agent: str, machine: str) -> str:
    return f"{agent}{SEPARATOR}{machine}"


def split_machine_id(machine_id: str) -> tuple[str, str]:
    """(agent, machine) of a hub machine id."""
    agent, _, machine = machine_id.partition(SEPARATOR)
    return agent, machine


def machine_from_status(agent: str, status: msg.MachineStatus, now: datetime) -> Machine:
    """The core's Machine for a machine.status message from ``agent``."""
    caps = status.capabilities
    policy = MachinePolicy(
        materials_accepted=frozenset(caps.materials),
        max_task_hours=caps.max_task_hours,
        auto_accept=caps.auto_accept,
        windows=tuple(CronExpr.parse(w) for w in caps.windows),
    )
    volume = caps.volume_mm
    return Machine(
        machine_id=hub_machine_id(agent, status.machine),
        maker_id=agent,
        kind=MachineKind(caps.kind.value),
        volume_mm=(volume.x, volume.y, volume.z),
        nozzle_mm=caps.nozzle_mm or 0.4,
        materials=frozenset(status.materials_loaded),
        policy=policy,
        state=MachineState(status.state.value),
        profile=caps.profile,
        driver=caps.driver,
        name=status.machine,
        last_seen=now,
    )
