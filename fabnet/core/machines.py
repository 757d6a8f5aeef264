"""Machines as the matcher sees them: kind, build volume, nozzle, materials, maker policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from fabnet.core.cron import CronExpr, window_open
from fabnet.core.states import MachineKind, MachineState
from fabnet.errors import InvalidInput

FIT_TOLERANCE_MM = 1e-6  # a part exactly as large as the volume fits


@dataclass(frozen=True)
class MachinePolicy:
    """What the maker allows on this machine.

    ``materials_accepted`` empty means any loaded material; ``max_task_hours`` None means no
    limit; ``auto_accept`` False means the agent asks the maker (the hub may wait longer);
    ``windows`` empty means always available, else available in a minute any window matches,
    read in the maker's time zone ``tz``.
    """

    materials_accepted: frozenset[str] = frozenset()
    max_task_hours: float | None = None
    auto_accept: bool = True
    windows: tuple[CronExpr, ...] = ()
    tz: tzinfo = UTC

    def __post_init__(self) -> None:
        if self.max_task_hours is not None and not self.max_task_hours > 0:
            raise InvalidInput(f"max_task_hours must be > 0, got {self.max_task_hours!r}")

    def available(self, now: datetime) -> bool:
        """True if a window is open at ``now`` (UTC-aware), read in the maker's time zone."""
        return window_open(self.windows, now.astimezone(self.tz))

    def allows_hours(self, hours: float) -> bool:
        """True if a task of ``hours`` on this machine is within the maker's limit."""
        return within_task_hours(hours, self.max_task_hours)


def within_task_hours(hours: float, max_task_hours: float | None) -> bool:
    """The maker's time rule, the one place it is written: a task of ``hours`` (estimated on
    the machine) is allowed when it is at most ``max_task_hours``; None or infinity is no
    limit. The hub's matcher and the agent's own check of an offer must never disagree."""
    return max_task_hours is None or hours <= max_task_hours


def same_material(a: str, b: str) -> bool:
    """How two material names compare, the one place it is written: case and surrounding
    spaces do not matter ("pla" is PLA). The hub stores canonical names; an agent's own config
    may not, and must still agree with the hub on what is loaded."""
    return a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True)
class Machine:
    """One machine of one maker; ``speed_factor`` scales nominal task hours (2.0 = twice as fast).

    ``volume_mm`` is the build volume (x, y, z) in mm; ``nozzle_mm`` the nozzle (FDM) or tool
    (CNC) diameter; ``materials`` what is loaded. Only ``idle`` machines are matched.
    """

    machine_id: str
    maker_id: str
    kind: MachineKind
    volume_mm: tuple[float, float, float]
    nozzle_mm: float
    materials: frozenset[str]
    policy: MachinePolicy = field(default_factory=MachinePolicy)
    state: MachineState = MachineState.IDLE
    speed_factor: float = 1.0
    profile: str = ""
    driver: str = "sim"
    name: str = ""
    last_seen: datetime | None = None
    held: bool = False  # on hold after failing too often in a row: never matched

    def __post_init__(self) -> None:
        if not self.speed_factor > 0:
            raise InvalidInput(f"speed_factor must be > 0, got {self.speed_factor!r}")
        if any(not v > 0 for v in self.volume_mm) or len(self.volume_mm) != 3:
            raise InvalidInput(f"volume_mm must be three sizes > 0, got {self.volume_mm!r}")
        if not self.nozzle_mm > 0:
            raise InvalidInput(f"nozzle_mm must be > 0, got {self.nozzle_mm!r}")

    @property
    def matchable_materials(self) -> frozenset[str]:
        """Loaded materials the maker accepts: the ones tasks can be matched on."""
        accepted = self.policy.materials_accepted
        return self.materials & accepted if accepted else self.materials

    def hours_for(self, nominal_hours: float) -> float:
        """Hours a task estimated at ``nominal_hours`` (speed factor 1) takes here."""
        return nominal_hours / self.speed_factor


def fits(size_mm: tuple[float, float, float], volume_mm: tuple[float, float, float]) -> bool:
    """True if a part of bounding box ``size_mm`` fits ``volume_mm``, allowing 90° about Z."""
    x, y, z = size_mm
    vx, vy, vz = volume_mm
    tol = FIT_TOLERANCE_MM
    if z > vz + tol:
        return False
    return (x <= vx + tol and y <= vy + tol) or (x <= vy + tol and y <= vx + tol)
