"""PrusaSlicer adapter: our profile and material as a PrusaSlicer config.ini, sliced headless."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fabnet.errors import InvalidInput, ToolFailed
from fabnet.profiles import FdmMaterial, FdmProfile, GcodeFlavour
from fabnet.slicing.base import SliceResult, SliceSettings
from fabnet.slicing.external import (
    DEFAULT_TIMEOUT_S,
    MIN_GCODE_MOVES,
    SlicerEstimate,
    check_height,
    copy_offsets,
    count_moves,
    drop_null_extrusions,
    feature_speeds,
    fill_placeholders,
    find_tool,
    first_layer_height_mm,
    last_line,
    line_width_mm,
    run_tool,
    tail,
    write_stl,
)

if TYPE_CHECKING:
    import trimesh

    from fabnet.profiles import CncMaterial, MachineProfile

log = logging.getLogger(__name__)

BINARIES = ("prusa-slicer", "PrusaSlicer", "prusaslicer")
INSTALL_HINT = "install it with `apt-get install prusa-slicer` (Debian/Ubuntu) or run `make test`"
# PrusaSlicer 2.5 has no "klipper" flavour (2.6 added it); Klipper accepts Marlin 2 G-code.
FLAVOURS = {GcodeFlavour.MARLIN: "marlin2", GcodeFlavour.KLIPPER: "marlin2"}

_TIME_RE = re.compile(r"^; estimated printing time \(normal mode\) = (.+)$", re.MULTILINE)
_MM_RE = re.compile(r"^; filament used \[mm\] = ([0-9.]+)", re.MULTILINE)
_G_RE = re.compile(r"^; (?:total )?filament used \[g\] = ([0-9.]+)", re.MULTILINE)
_DURATION_RE = re.compile(r"(\d+)([dhms])")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _ini_value(value: str | float | int) -> str:
    """One config.ini value: numbers as %g, text with backslashes and newlines escaped."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\n", "\\n")
    return f"{value:g}"


def _machine_limits(profile: FdmProfile) -> dict[str, str | float | int]:
    """The profile's feed, acceleration and jerk limits, used for PrusaSlicer's time estimate."""
    return {
        "machine_limits_usage": "time_estimate_only",
        "machine_max_feedrate_x": profile.max_feed_mm_s.x,
        "machine_max_feedrate_y": profile.max_feed_mm_s.y,
        "machine_max_feedrate_z": profile.max_feed_mm_s.z,
        "machine_max_feedrate_e": profile.max_feed_mm_s.e,
        "machine_max_acceleration_x": profile.max_accel_mm_s2.x,
        "machine_max_acceleration_y": profile.max_accel_mm_s2.y,
        "machine_max_acceleration_z": profile.max_accel_mm_s2.z,
        "machine_max_acceleration_e": profile.max_accel_mm_s2.e,
        "machine_max_acceleration_extruding": profile.print_accel_mm_s2,
        "machine_max_acceleration_retracting": profile.print_accel_mm_s2,
        "machine_max_acceleration_travel": profile.travel_accel_mm_s2,
        "machine_max_jerk_x": profile.jerk_mm_s.x,
        "machine_max_jerk_y": profile.jerk_mm_s.y,
        "machine_max_jerk_z": profile.jerk_mm_s.z,
        "machine_max_jerk_e": profile.jerk_mm_s.e,
    }


def build_config(
    profile: FdmProfile, material: FdmMaterial, settings: SliceSettings
) -> dict[str, str]:
    """Our profile, material and settings as PrusaSlicer 2.5 config keys (all values as text)."""
    vol = profile.volume
    speeds = feature_speeds(profile, material, settings.layer_height_mm)
    width = line_width_mm(profile)
    fan = material.fan_percent
    raw: dict[str, str | float | int] = {
        "printer_technology": "FFF",
        "bed_shape": f"0x0,{vol.x_mm:g}x0,{vol.x_mm:g}x{vol.y_mm:g},0x{vol.y_mm:g}",
        "max_print_height": vol.z_mm,
        "nozzle_diameter": profile.nozzle_mm,
        "filament_diameter": profile.filament_diameter_mm,
        "filament_density": material.density_g_cm3,
        "filament_max_volumetric_speed": material.max_volumetric_mm3_s,
        "gcode_flavor": FLAVOURS[profile.flavour],
        "use_relative_e_distances": 1,
        "layer_height": settings.layer_height_mm,
        "first_layer_height": first_layer_height_mm(profile, settings.layer_height_mm),
        "perimeters": settings.walls,
        "top_solid_layers": settings.top_layers,
        "bottom_solid_layers": settings.bottom_layers,
        "top_solid_min_thickness": 0,
        "bottom_solid_min_thickness": 0,
        "fill_density": f"{settings.infill_percent:g}%",
        "fill_pattern": "rectilinear",
        "infill_every_layers": 1,
        "temperature": material.nozzle_c,
        "first_layer_temperature": material.first_layer_nozzle_c,
        "bed_temperature": material.bed_c,
        "first_layer_bed_temperature": material.first_layer_bed_c,
        "retract_length": profile.retract_mm,
        "retract_speed": speeds.retract,
        "deretract_speed": 0,
        "retract_lift": 0,
        "wipe": 0,
        "skirts": settings.skirt_loops,
        "skirt_distance": 3,
        "skirt_height": 1,
        "min_skirt_length": 0,
        "brim_width": 0,
        **_machine_limits(profile),
        "cooling": 1 if fan > 0 else 0,
        "fan_always_on": 1 if fan > 0 else 0,
        "min_fan_speed": fan,
        "max_fan_speed": fan,
        "bridge_fan_speed": fan,
        "disable_fan_first_layers": 1,
        "extrusion_width": width,
        "first_layer_extrusion_width": width,
        "perimeter_extrusion_width": width,
        "external_perimeter_extrusion_width": width,
        "infill_extrusion_width": width,
        "solid_infill_extrusion_width": width,
        "top_infill_extrusion_width": width,
        "perimeter_speed": speeds.perimeter,
        "small_perimeter_speed": speeds.external_perimeter,
        "external_perimeter_speed": speeds.external_perimeter,
        "infill_speed": speeds.infill,
        "solid_infill_speed": speeds.solid_infill,
        "top_solid_infill_speed": speeds.top_bottom,
        "gap_fill_speed": speeds.external_perimeter,
        "bridge_speed": speeds.external_perimeter,
        "travel_speed": speeds.travel,
        "travel_speed_z": speeds.z_travel,
        "first_layer_speed": speeds.first_layer,
        "start_gcode": fill_placeholders(profile.start_gcode, material),
        "end_gcode": fill_placeholders(profile.end_gcode, material),
        "before_layer_gcode": "",
        "layer_gcode": "G92 E0",  # PrusaSlicer requires it with relative E
        "gcode_label_objects": 0,
        "gcode_comments": 0,
        "complete_objects": 0,
        "thumbnails": "",
    }
    return {key: _ini_value(value) for key, value in raw.items()}


def parse_estimate(gcode: str) -> SlicerEstimate:
    """PrusaSlicer's own print time (s), filament (mm) and grams from its G-code footer."""
    time_match = _TIME_RE.search(gcode)
    seconds = None
    if time_match:
        parts = _DURATION_RE.findall(time_match.group(1))
        seconds = float(sum(int(n) * _UNIT_S[unit] for n, unit in parts))
    mm_match = _MM_RE.search(gcode)
    g_match = _G_RE.search(gcode)
    return SlicerEstimate(
        time_s=seconds,
        filament_mm=float(mm_match.group(1)) if mm_match else None,
        grams=float(g_match.group(1)) if g_match else None,
    )


class PrusaSlicer:
    """The ``Slicer`` protocol over the ``prusa-slicer`` command line (tested with 2.5).

    ``search_path`` replaces ``$PATH`` when looking for the binary; ``timeout_s`` bounds a run.
    """

    name = "prusaslicer"

    def __init__(
        self, search_path: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.search_path = search_path
        self.timeout_s = timeout_s

    def binary(self) -> str:
        """The prusa-slicer executable; ToolMissing saying how to install it."""
        return find_tool(BINARIES, INSTALL_HINT, self.search_path)

    def slice(
        self,
        mesh: trimesh.Trimesh,
        profile: MachineProfile,
        material: FdmMaterial | CncMaterial,
        settings: SliceSettings,
    ) -> SliceResult:
        """G-code for ``quantity`` copies centred on the bed.

        Raises InvalidInput (CNC profile or material, part or copies do not fit), ToolMissing,
        ToolFailed (non-zero exit, timeout, or no G-code written).
        """
        if not isinstance(profile, FdmProfile) or not isinstance(material, FdmMaterial):
            raise InvalidInput(f"prusaslicer slices FDM only, got profile {profile.id!r}")
        extents = mesh.extents
        copy_offsets((float(extents[0]), float(extents[1])), settings.quantity, profile)
        check_height(float(extents[2]), profile)
        binary = self.binary()
        config = build_config(profile, material, settings)
        with tempfile.TemporaryDirectory(prefix="fabnet-prusaslicer-") as tmp:
            work = Path(tmp)
            stl = write_stl(mesh, work / "part.stl")
            ini = work / "config.ini"
            ini.write_text("".join(f"{key} = {value}\n" for key, value in config.items()))
            out = work / "out.gcode"
            argv = [binary, "--export-gcode", "--load", str(ini)]
            argv += ["--center", f"{profile.volume.x_mm / 2:g},{profile.volume.y_mm / 2:g}"]
            if settings.quantity > 1:
                argv += ["--duplicate", str(settings.quantity)]
            argv += ["--output", str(out), str(stl)]
            run = run_tool(argv, self.timeout_s, cwd=work)
            gcode = out.read_text(errors="replace") if out.exists() else ""
        if count_moves(gcode) < MIN_GCODE_MOVES:
            output = run.stdout + run.stderr
            raise ToolFailed(
                f"prusa-slicer wrote no usable G-code: {last_line(output)}", tail(output)
            )
        gcode, dropped = drop_null_extrusions(gcode)
        if dropped:
            log.debug("dropped %d zero-length extrusions from PrusaSlicer's G-code", dropped)
        estimate = parse_estimate(gcode)
        log.info("prusaslicer sliced %s for %s in %.1f s", profile.id, material.name, run.wall_s)
        return SliceResult(gcode=gcode, slicer=self.name, notes=estimate.as_notes())
