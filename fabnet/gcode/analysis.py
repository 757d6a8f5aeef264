"""What a G-code file does: layers, bounds, filament (mm, g), time, temperatures, spindle, feeds.

``analyse`` runs the file through a small machine model (``MachineState``) once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabnet.gcode.machine import MachineState
from fabnet.gcode.parser import parse
from fabnet.profiles.model import CncProfile, FdmMaterial, MachineProfile

log = logging.getLogger(__name__)

DEFAULT_FILAMENT_DIAMETER_MM = 1.75
DEFAULT_DENSITY_G_CM3 = 1.24  # PLA

Point = tuple[float, float, float]


@dataclass(frozen=True)
class Analysis:
    """Facts about one G-code file. Lengths mm, times s, temperatures °C, feeds mm/s.

    ``bounds_min``/``bounds_max`` cover the extruding moves (FDM) or, in a file that never
    extrudes, the feed moves G1/G2/G3 (CNC); ``all_min``/``all_max`` cover every move. Both are
    machine coordinates (G92 offsets applied) and all zeros when there is no such move.
    ``cut_mm`` is the path length of extruding (FDM) or feed (CNC) moves, ``rapid_mm`` the rest.
    ``layer_source`` says how layers were counted: ``cura`` (``;LAYER:``), ``prusaslicer``
    (``;LAYER_CHANGE``) or ``z`` (distinct Z heights of extruding moves).
    """

    lines: int
    commands: int
    moves: int
    layers: int
    layer_source: str
    filament_mm: float
    filament_diameter_mm: float
    density_g_cm3: float
    grams: float
    time_s: float
    dwell_s: float
    bounds_min: Point
    bounds_max: Point
    all_min: Point
    all_max: Point
    max_hotend_c: float
    max_bed_c: float
    max_feed_mm_s: float
    spindle_max_rpm: float
    cut_mm: float
    rapid_mm: float

    @property
    def filament_cm3(self) -> float:
        """Volume of filament used, cm³."""
        return self.filament_mm * math.pi * (self.filament_diameter_mm / 2.0) ** 2 / 1000.0

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready values (tuples become lists), plus ``filament_cm3``."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["filament_cm3"] = self.filament_cm3
        return out


def analyse(
    source: str | Path,
    profile: MachineProfile | None = None,
    material: FdmMaterial | None = None,
) -> Analysis:
    """Analyse ``source`` (a path, a ``.gz`` path, or G-code text).

    ``profile`` gives filament diameter, feed/acceleration caps and jerk for the time estimate
    (defaults: 1.75 mm, generic Marlin limits); ``material`` the density (default PLA 1.24).
    Raises GcodeError (with its line number) for unparseable lines, InvalidInput for a missing
    file."""
    state = MachineState(profile)
    lines = 0
    for cmd in parse(source, comments=True):
        state.execute(cmd)
        lines = cmd.line_no
    return summarise(state, lines, profile, material)


def summarise(
    state: MachineState, lines: int, profile: MachineProfile | None, material: FdmMaterial | None
) -> Analysis:
    """The ``Analysis`` of a file whose ``lines`` lines ``state`` has executed (with planning,
    comments included); ``analyse`` and the one-pass ``verify`` both end here."""
    diameter = DEFAULT_FILAMENT_DIAMETER_MM
    if profile is not None and not isinstance(profile, CncProfile):
        diameter = profile.filament_diameter_mm
    density = material.density_g_cm3 if material is not None else DEFAULT_DENSITY_G_CM3
    filament = state.filament_high_water_mm
    grams = filament * math.pi * (diameter / 2.0) ** 2 / 1000.0 * density
    if filament == 0.0 and state.part_mass_g is not None:
        grams = state.part_mass_g  # a CNC cut: the parts' declared weight
    if state.layer_markers_cura:
        layers, source = state.layer_markers_cura, "cura"
    elif state.layer_markers_prusa:
        layers, source = state.layer_markers_prusa, "prusaslicer"
    else:
        layers, source = len(state.layer_heights), "z"
    work = state.extrude_box if state.extrude_box.seen else state.cut_box
    return Analysis(
        lines=lines,
        commands=state.commands,
        moves=state.moves,
        layers=layers,
        layer_source=source,
        filament_mm=filament,
        filament_diameter_mm=diameter,
        density_g_cm3=density,
        grams=grams,
        time_s=state.planner.total_s(),
        dwell_s=state.planner.dwell_s,
        bounds_min=work.low(),
        bounds_max=work.high(),
        all_min=state.all_box.low(),
        all_max=state.all_box.high(),
        max_hotend_c=state.max_hotend_c,
        max_bed_c=state.max_bed_c,
        max_feed_mm_s=state.max_feed_mm_min / 60.0,
        spindle_max_rpm=state.spindle_max_rpm,
        cut_mm=state.extrude_mm if state.extrude_box.seen else state.feed_mm,
        rapid_mm=state.rapid_mm + (state.feed_mm if state.extrude_box.seen else 0.0),
    )
