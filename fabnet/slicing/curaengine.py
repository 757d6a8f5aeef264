"""CuraEngine adapter: our profile and material as explicit ``-s key=value`` settings.

CuraEngine reads only ``default_value`` from its definition files and never evaluates their
``value`` formulas, so every setting derived in Cura's front end is computed here and passed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fabnet.errors import InvalidInput, ToolFailed, ToolMissing
from fabnet.profiles import FdmMaterial, FdmProfile
from fabnet.slicing.base import SliceResult, SliceSettings
from fabnet.slicing.external import (
    DEFAULT_TIMEOUT_S,
    MIN_GCODE_MOVES,
    FeatureSpeeds,
    SlicerEstimate,
    check_height,
    copy_offsets,
    count_moves,
    feature_speeds,
    fill_placeholders,
    find_tool,
    first_layer_height_mm,
    line_width_mm,
    run_tool,
    tail,
    write_stl,
)

if TYPE_CHECKING:
    import trimesh

    from fabnet.profiles import CncMaterial, MachineProfile

log = logging.getLogger(__name__)

BINARIES = ("CuraEngine", "curaengine")
INSTALL_HINT = "install it with `apt-get install cura-engine` (Debian/Ubuntu) or run `make test`"
RESOURCES_HINT = (
    "run scripts/install-system-deps.sh (it unpacks Debian's `cura` package under var/cura), "
    "or set FABNET_CURA_RESOURCES to a Cura resources folder holding definitions/ and extruders/"
)
MACHINE_DEFINITION = "fdmprinter.def.json"  # every setting, no machine's formula-only overrides
FLAVOUR = "RepRap (Marlin/Sprinter)"  # Cura's name for Marlin; Klipper accepts the same G-code

_ERROR_RE = re.compile(r"^\[ERROR\].*$", re.MULTILINE)
_TIME_RE = re.compile(r"^Print time \(s\): ([0-9.]+)", re.MULTILINE)
_VOLUME_RE = re.compile(r"^Filament \(mm\^3\): ([0-9.]+)", re.MULTILINE)
_HEADER_RE = re.compile(r"Gcode header after slicing:\n(.*?)End of gcode header\.", re.DOTALL)


def find_resources(explicit: Path | None = None) -> Path:
    """The Cura resources folder: ``explicit``, ``$FABNET_CURA_RESOURCES``, ``<repo>/var/cura/…``
    or ``/usr/share/cura/resources``. An explicit folder is returned unchecked (CuraEngine
    reports what is missing in it); otherwise ToolMissing when none holds the definitions.
    """
    if explicit is not None:
        return explicit
    env = os.environ.get("FABNET_CURA_RESOURCES")
    repo = Path(__file__).resolve().parents[2]
    candidates = [Path(env)] if env else []
    candidates += [repo / "var/cura/usr/share/cura/resources", Path("/usr/share/cura/resources")]
    for folder in candidates:
        if (folder / "definitions" / MACHINE_DEFINITION).is_file():
            return folder
    searched = ", ".join(str(c) for c in candidates)
    raise ToolMissing(f"Cura definitions not found (searched {searched}); {RESOURCES_HINT}")


def _setting_text(value: str | float | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return f"{value:g}"


def _machine_limits(profile: FdmProfile) -> dict[str, str | float | int | bool]:
    """The profile's feed, acceleration and jerk limits, used for CuraEngine's time estimate."""
    return {
        "machine_max_feedrate_x": profile.max_feed_mm_s.x,
        "machine_max_feedrate_y": profile.max_feed_mm_s.y,
        "machine_max_feedrate_z": profile.max_feed_mm_s.z,
        "machine_max_feedrate_e": profile.max_feed_mm_s.e,
        "machine_max_acceleration_x": profile.max_accel_mm_s2.x,
        "machine_max_acceleration_y": profile.max_accel_mm_s2.y,
        "machine_max_acceleration_z": profile.max_accel_mm_s2.z,
        "machine_max_acceleration_e": profile.max_accel_mm_s2.e,
        "machine_acceleration": profile.print_accel_mm_s2,
        "machine_max_jerk_xy": min(profile.jerk_mm_s.x, profile.jerk_mm_s.y),
        "machine_max_jerk_z": profile.jerk_mm_s.z,
        "machine_max_jerk_e": profile.jerk_mm_s.e,
    }


def _speeds(speeds: FeatureSpeeds) -> dict[str, str | float | int | bool]:
    """Every feature speed CuraEngine reads (mm/s); Cura derives most from speed_print."""
    return {
        "speed_print": speeds.infill,
        "speed_infill": speeds.infill,
        "speed_wall": speeds.perimeter,
        "speed_wall_0": speeds.external_perimeter,
        "speed_wall_x": speeds.perimeter,
        "speed_topbottom": speeds.top_bottom,
        "speed_roofing": speeds.top_bottom,
        "speed_support": speeds.infill,
        "speed_prime_tower": speeds.infill,
        "speed_travel": speeds.travel,
        "speed_layer_0": speeds.first_layer,
        "speed_print_layer_0": speeds.first_layer,
        "speed_travel_layer_0": round(speeds.first_layer * speeds.travel / speeds.infill, 1),
        "skirt_brim_speed": speeds.first_layer,
        "speed_z_hop": speeds.z_travel,
        "speed_slowdown_layers": 1,
    }


def build_settings(
    profile: FdmProfile, material: FdmMaterial, settings: SliceSettings
) -> dict[str, str]:
    """Every CuraEngine 4.13 setting we rely on, derived as fdmprinter.def.json's formulas would."""
    vol = profile.volume
    width = line_width_mm(profile)
    layer = settings.layer_height_mm
    first_layer = first_layer_height_mm(profile, layer)
    speeds = feature_speeds(profile, material, layer)
    density = settings.infill_percent
    fan = material.fan_percent
    # 'lines' infill: infill_line_distance = infill_line_width * 100 / density * 1
    infill_distance = 0.0 if density == 0 else width * 100.0 / density
    raw: dict[str, str | float | int | bool] = {
        "machine_width": vol.x_mm,
        "machine_depth": vol.y_mm,
        "machine_height": vol.z_mm,
        "machine_center_is_zero": False,
        "machine_heated_bed": True,
        "machine_extruder_count": 1,
        "extruders_enabled_count": 1,
        "machine_nozzle_size": profile.nozzle_mm,
        "material_diameter": profile.filament_diameter_mm,
        "machine_gcode_flavor": FLAVOUR,
        "relative_extrusion": True,
        "machine_start_gcode": fill_placeholders(profile.start_gcode, material).strip(),
        # CuraEngine writes M82 right before the end G-code; ours is written for M83
        "machine_end_gcode": "M83\n" + fill_placeholders(profile.end_gcode, material).strip(),
        **_machine_limits(profile),
        "acceleration_enabled": False,
        "jerk_enabled": False,
        "layer_height": layer,
        "layer_height_0": first_layer,
        "infill_sparse_thickness": layer,
        "line_width": width,
        "wall_line_width": width,
        "wall_line_width_0": width,
        "wall_line_width_x": width,
        "skin_line_width": width,
        "infill_line_width": width,
        "skirt_brim_line_width": width,
        "support_line_width": width,
        "initial_layer_line_width_factor": 100,
        "wall_line_count": settings.walls,
        "wall_thickness": round(settings.walls * width, 4),
        "top_layers": settings.top_layers,
        "bottom_layers": settings.bottom_layers,
        "initial_bottom_layers": settings.bottom_layers,
        "top_thickness": round(settings.top_layers * layer, 4),
        "bottom_thickness": round(settings.bottom_layers * layer, 4),
        "top_bottom_thickness": round(settings.top_layers * layer, 4),
        "top_bottom_pattern": "lines",
        "top_bottom_pattern_0": "lines",
        "roofing_layer_count": 0,
        "infill_sparse_density": density,
        "infill_pattern": "lines",
        "infill_line_distance": round(infill_distance, 4),
        "infill_overlap": 10,
        "infill_overlap_mm": round(0.5 * (width + width) * 10 / 100, 4),
        "skin_overlap": 5,
        "skin_overlap_mm": round(0.5 * (width + width) * 5 / 100, 4),
        "infill_wipe_dist": round(width / 4, 4),
        "wall_0_wipe_dist": round(profile.nozzle_mm / 2, 4),
        "material_print_temperature": material.nozzle_c,
        "default_material_print_temperature": material.nozzle_c,
        "material_print_temperature_layer_0": material.first_layer_nozzle_c,
        "material_initial_print_temperature": material.nozzle_c,
        "material_final_print_temperature": material.nozzle_c,
        "material_bed_temperature": material.bed_c,
        "default_material_bed_temperature": material.bed_c,
        "material_bed_temperature_layer_0": material.first_layer_bed_c,
        # our start G-code heats (M190/M109 with the first-layer values): no second heat-up
        "material_bed_temp_prepend": False,
        "material_print_temp_prepend": False,
        "retraction_enable": profile.retract_mm > 0,
        "retraction_amount": profile.retract_mm,
        "retraction_speed": speeds.retract,
        "retraction_retract_speed": speeds.retract,
        "retraction_prime_speed": speeds.retract,
        "retraction_min_travel": round(2 * width, 4),
        "retraction_hop_enabled": False,
        "adhesion_type": "skirt" if settings.skirt_loops > 0 else "none",
        "skirt_line_count": settings.skirt_loops,
        "skirt_gap": 3,
        "skirt_brim_minimal_length": 0,
        "cool_fan_enabled": fan > 0,
        "cool_fan_speed": fan,
        "cool_fan_speed_min": fan,
        "cool_fan_speed_max": fan,
        "cool_fan_speed_0": 0,
        "cool_fan_full_layer": 2,
        "cool_fan_full_at_height": round(first_layer + layer, 4),
        "cool_min_layer_time": 5,
        "cool_min_speed": 10,
        **_speeds(speeds),
        "support_enable": False,
        "magic_spiralize": False,
        "center_object": True,
    }
    return {key: _setting_text(value) for key, value in raw.items()}


def parse_estimate(stderr: str, profile: FdmProfile, material: FdmMaterial) -> SlicerEstimate:
    """CuraEngine's own print time (s) and filament volume (mm³ → mm and g) from its ``-v`` log."""
    time_match = _TIME_RE.search(stderr)
    volume_match = _VOLUME_RE.search(stderr)
    if volume_match is None:
        return SlicerEstimate(time_s=float(time_match.group(1)) if time_match else None)
    volume_mm3 = float(volume_match.group(1))
    area_mm2 = math.pi * (profile.filament_diameter_mm / 2) ** 2
    return SlicerEstimate(
        time_s=float(time_match.group(1)) if time_match else None,
        filament_mm=volume_mm3 / area_mm2,
        grams=volume_mm3 / 1000.0 * material.density_g_cm3,
    )


def with_final_header(gcode: str, stderr: str) -> str:
    """The G-code with CuraEngine's placeholder header (``;TIME:6666`` …) replaced by the real one."""
    match = _HEADER_RE.search(stderr)
    head, sep, body = gcode.partition("\n\n")
    if match is None or not sep or not head.startswith(";FLAVOR"):
        return gcode
    return match.group(1).rstrip("\n") + "\n\n" + body


class CuraEngineSlicer:
    """The ``Slicer`` protocol over ``CuraEngine slice`` (tested with 4.13).

    ``search_path`` replaces ``$PATH`` when looking for the binary; ``resources`` is the Cura
    resources folder (default: see ``find_resources``); ``timeout_s`` bounds a run.
    """

    name = "curaengine"

    def __init__(
        self,
        search_path: str | None = None,
        resources: Path | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.search_path = search_path
        self.resources = resources
        self.timeout_s = timeout_s

    def binary(self) -> str:
        """The CuraEngine executable; ToolMissing saying how to install it."""
        return find_tool(BINARIES, INSTALL_HINT, self.search_path)

    def slice(
        self,
        mesh: trimesh.Trimesh,
        profile: MachineProfile,
        material: FdmMaterial | CncMaterial,
        settings: SliceSettings,
    ) -> SliceResult:
        """G-code for ``quantity`` copies in a grid centred on the bed.

        Raises InvalidInput (CNC profile or material, part or copies do not fit), ToolMissing
        (binary or definitions), ToolFailed (exit status, timeout, ``[ERROR]`` lines on stderr
        or no usable G-code: CuraEngine exits 0 after most of its errors).
        """
        if not isinstance(profile, FdmProfile) or not isinstance(material, FdmMaterial):
            raise InvalidInput(f"curaengine slices FDM only, got profile {profile.id!r}")
        extents = mesh.extents
        offsets = copy_offsets((float(extents[0]), float(extents[1])), settings.quantity, profile)
        check_height(float(extents[2]), profile)
        binary = self.binary()
        resources = find_resources(self.resources)
        values = build_settings(profile, material, settings)
        pairs = [arg for key, value in values.items() for arg in ("-s", f"{key}={value}")]
        with tempfile.TemporaryDirectory(prefix="fabnet-curaengine-") as tmp:
            work = Path(tmp)
            stl = write_stl(mesh, work / "part.stl")
            out = work / "out.gcode"
            argv = [
                binary,
                "slice",
                "-v",
                "-j",
                str(resources / "definitions" / MACHINE_DEFINITION),
            ]
            argv += [*pairs, "-e0", *pairs]
            for dx, dy in offsets:
                argv += [
                    "-l",
                    str(stl),
                    "-s",
                    f"mesh_position_x={dx:g}",
                    "-s",
                    f"mesh_position_y={dy:g}",
                ]
            argv += ["-o", str(out)]
            search = f"{resources / 'definitions'}{os.pathsep}{resources / 'extruders'}"
            run = run_tool(argv, self.timeout_s, env={"CURA_ENGINE_SEARCH_PATH": search}, cwd=work)
            gcode = out.read_text(errors="replace") if out.exists() else ""
        errors = _ERROR_RE.findall(run.stderr)
        if errors:
            raise ToolFailed(f"CuraEngine reported errors: {errors[0]}", tail(run.stderr))
        if count_moves(gcode) < MIN_GCODE_MOVES:
            raise ToolFailed("CuraEngine wrote no usable G-code", tail(run.stderr))
        estimate = parse_estimate(run.stderr, profile, material)
        log.info("curaengine sliced %s for %s in %.1f s", profile.id, material.name, run.wall_s)
        gcode = with_final_header(gcode, run.stderr)
        return SliceResult(gcode=gcode, slicer=self.name, notes=estimate.as_notes())
