"""Messages about agents, machines and the hub as a whole: status, telemetry, machine commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated

from fabnet.bus.envelope import Coordinate, Ident, Label, Message, Name, Percent, TempC
from fabnet.bus.schema import Pattern, Range
from fabnet.bus.topics import TopicKind
from fabnet.core.states import MachineState  # one definition: the core's
from fabnet.profiles import MachineKind


class AgentState(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"


class HubState(enum.Enum):
    ONLINE = "online"
    GONE = "gone"


@dataclass(frozen=True)
class Xyz:
    """A point or an extent in mm."""

    x: Coordinate
    y: Coordinate
    z: Coordinate


@dataclass(frozen=True)
class Capabilities:
    """What a machine can do, as the hub matches on: profile id, kind, build volume (mm),
    nozzle or tool diameter (mm), materials its maker's policy accepts, and that policy."""

    profile: Ident
    kind: MachineKind
    volume_mm: Xyz
    nozzle_mm: Annotated[float, Range(0.01, 100)] | None
    materials: tuple[Name, ...]
    # The maker's policy, so the hub offers only what the agent would accept (the agent
    # still decides): driver name, longest task (h; None = no limit), whether offers are
    # accepted automatically, availability windows as 5-field cron expressions.
    driver: Name = "sim"
    max_task_hours: Annotated[float, Range(0.001, 10000)] | None = None
    auto_accept: bool = True
    windows: tuple[Label, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AgentStatus(Message):
    TYPE = "agent.status"
    KIND = TopicKind.AGENT_STATUS
    state: AgentState
    version: Name
    machines: tuple[Ident, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MachineStatus(Message):
    TYPE = "machine.status"
    KIND = TopicKind.MACHINE_STATUS
    machine: Ident
    state: MachineState
    capabilities: Capabilities
    materials_loaded: tuple[Name, ...] = ()
    task_id: Ident | None = None


@dataclass(frozen=True, kw_only=True)
class MachineTelemetry(Message):
    """Temperatures in °C, spindle in rpm, position in mm; None where the machine has none."""

    TYPE = "machine.telemetry"
    KIND = TopicKind.TELEMETRY
    machine: Ident
    task_id: Ident | None = None
    percent: Percent | None = None
    hotend_c: TempC | None = None
    hotend_target_c: TempC | None = None
    bed_c: TempC | None = None
    bed_target_c: TempC | None = None
    spindle_rpm: Annotated[float, Range(0, 1e6)] | None = None
    position_mm: Xyz | None = None


@dataclass(frozen=True, kw_only=True)
class MachineCommand(Message):
    """Base of the hub's commands about one machine rather than one task."""

    KIND = TopicKind.COMMANDS
    machine: Ident


@dataclass(frozen=True, kw_only=True)
class MachineConfigure(MachineCommand):
    """The maker changed the machine on the hub: loaded ``material``, and the policy the agent
    decides offers by (accepted ``materials``, longest task in h with None for no limit,
    ``auto_accept``, availability ``windows`` as 5-field cron expressions)."""

    TYPE = "machine.configure"
    material: Name
    materials: tuple[Name, ...]
    max_task_hours: Annotated[float, Range(0.001, 10000)] | None = None
    auto_accept: bool = True
    windows: tuple[Label, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MachineHeld(MachineCommand):
    """The hub stopped offering work to this machine: it failed ``failures`` times in a row
    (issue 10). Nothing to do but tell the maker; the maker or an operator releases the hold
    on the hub (``POST /api/v1/machines/<agent>/<machine>/release-hold``)."""

    TYPE = "machine.held"
    failures: Annotated[int, Range(1, 1000)]
    reason: Annotated[str, Pattern(r"[^\x00-\x1f\x7f]{1,500}", "1-500 printable characters")]


@dataclass(frozen=True, kw_only=True)
class HubStatus(Message):
    TYPE = "hub.status"
    KIND = TopicKind.HUB_STATUS
    hub_id: Ident
    state: HubState
    version: Name
