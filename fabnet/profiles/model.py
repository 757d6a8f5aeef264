"""Typed, immutable values for machine profiles and materials; built only by ``loader``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# one definition of machine kinds (issue 9): the core's, re-exported for fabnet.profiles
from fabnet.core.states import MachineKind as MachineKind


class GcodeFlavour(enum.Enum):
    """The firmware dialect a profile's G-code is written for."""

    MARLIN = "marlin"
    KLIPPER = "klipper"
    GRBL = "grbl"


@dataclass(frozen=True)
class Axes:
    """A per-axis quantity (feed mm/s, acceleration mm/s², jerk mm/s); ``e`` is the extruder."""

    x: float
    y: float
    z: float
    e: float = 0.0


@dataclass(frozen=True)
class Volume:
    """A machine's usable work volume in mm, from (0, 0, 0) to (x_mm, y_mm, z_mm)."""

    x_mm: float
    y_mm: float
    z_mm: float

    def fits(self, size_mm: tuple[float, float, float]) -> bool:
        """True when a box of ``size_mm`` (x, y, z) fits, allowing rotation about Z by 90°."""
        sx, sy, sz = size_mm
        if sz > self.z_mm:
            return False
        return (sx <= self.x_mm and sy <= self.y_mm) or (sy <= self.x_mm and sx <= self.y_mm)


@dataclass(frozen=True)
class Tool:
    """One cutter in a CNC machine's tool table."""

    number: int
    name: str
    diameter_mm: float
    flutes: int
    shape: str  # "flat", "ball" or "vbit"
    max_depth_mm: float


@dataclass(frozen=True)
class FdmProfile:
    """A 3D printer's limits and its start/end G-code."""

    id: str
    name: str
    flavour: GcodeFlavour
    volume: Volume
    nozzle_mm: float
    filament_diameter_mm: float
    max_hotend_c: float
    max_bed_c: float
    max_feed_mm_s: Axes
    max_accel_mm_s2: Axes
    print_accel_mm_s2: float
    travel_accel_mm_s2: float
    jerk_mm_s: Axes
    retract_mm: float
    retract_speed_mm_s: float
    start_gcode: str
    end_gcode: str
    forbidden: tuple[str, ...]
    source: str
    # the host's watch on the heaters while printing: a heater more than thermal_margin_c
    # below its reached target for over thermal_hold_s has lost heat (see drivers.marlin_job)
    thermal_margin_c: float = 15.0
    thermal_hold_s: float = 60.0
    # pause: lift Z by pause_lift_mm (within the volume) and park the head at (park_x_mm,
    # park_y_mm); None: Marlin's own default, 10 mm in from the front-left X and back Y edge
    pause_lift_mm: float = 5.0
    park_x_mm: float | None = None
    park_y_mm: float | None = None

    @property
    def kind(self) -> MachineKind:
        return MachineKind.FDM

    @property
    def park_xy_mm(self) -> tuple[float, float]:
        """Where a paused print parks the head (mm): the profile's point, else Marlin's
        NOZZLE_PARK_POINT default (X min + 10, Y max - 10) clamped to the volume."""
        x = self.park_x_mm if self.park_x_mm is not None else min(10.0, self.volume.x_mm)
        y = self.park_y_mm if self.park_y_mm is not None else max(0.0, self.volume.y_mm - 10)
        return x, y


@dataclass(frozen=True)
class CncProfile:
    """A CNC router's limits, spindle range and tool table."""

    id: str
    name: str
    flavour: GcodeFlavour
    volume: Volume
    spindle_rpm_min: float
    spindle_rpm_max: float
    max_feed_mm_min: Axes
    max_accel_mm_s2: Axes
    safe_z_mm: float
    tools: tuple[Tool, ...]
    default_tool: int
    start_gcode: str
    end_gcode: str
    forbidden: tuple[str, ...]
    source: str

    @property
    def kind(self) -> MachineKind:
        return MachineKind.CNC

    def tool(self, number: int | None = None) -> Tool:
        """The tool numbered ``number`` (the default tool when None); KeyError when absent."""
        wanted = self.default_tool if number is None else number
        for tool in self.tools:
            if tool.number == wanted:
                return tool
        raise KeyError(f"profile {self.id} has no tool T{wanted}")


MachineProfile = FdmProfile | CncProfile


@dataclass(frozen=True)
class FdmMaterial:
    """A filament: temperatures in °C, density in g/cm³, cost per kg in EUR."""

    name: str
    nozzle_c: float
    first_layer_nozzle_c: float
    bed_c: float
    first_layer_bed_c: float
    fan_percent: float
    density_g_cm3: float
    cost_per_kg: float
    max_volumetric_mm3_s: float
    source: str

    @property
    def kind(self) -> MachineKind:
        return MachineKind.FDM


@dataclass(frozen=True)
class CncMaterial:
    """A sheet stock for a CNC router and the feeds for a 1/4" two-flute end mill in it."""

    name: str
    thickness_mm: float
    density_g_cm3: float
    cost_per_kg: float
    feed_mm_min: float
    plunge_mm_min: float
    depth_per_pass_mm: float
    spindle_rpm: float
    source: str

    @property
    def kind(self) -> MachineKind:
        return MachineKind.CNC


@dataclass(frozen=True)
class Materials:
    """The materials table: filaments and CNC stocks by lower-case name."""

    fdm: dict[str, FdmMaterial]
    cnc: dict[str, CncMaterial]

    def get(self, name: str) -> FdmMaterial | CncMaterial:
        """The material called ``name`` (case-insensitive); KeyError naming the choices."""
        key = name.strip().lower()
        if key in self.fdm:
            return self.fdm[key]
        if key in self.cnc:
            return self.cnc[key]
        known = ", ".join(sorted([*self.fdm, *self.cnc]))
        raise KeyError(f"unknown material {name!r}; known: {known}")
