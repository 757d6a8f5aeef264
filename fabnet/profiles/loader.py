"""Load and validate ``firmware_profiles/*.toml`` and ``firmware_profiles/materials.toml``."""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path

from fabnet.errors import ConfigError, NotFound
from fabnet.profiles.model import (
    Axes,
    CncMaterial,
    CncProfile,
    FdmMaterial,
    FdmProfile,
    GcodeFlavour,
    MachineProfile,
    Materials,
    Tool,
    Volume,
)
from fabnet.profiles.reader import TableReader
from fabnet.seed import PROFILES, shipped_dir

MATERIALS_FILE = "materials.toml"


def profiles_dir() -> Path:
    """Where profiles live: ``$FABNET_PROFILES_DIR``, or the profiles fabnet ships (package
    data in a wheel, ``firmware_profiles/`` in a checkout)."""
    env = os.environ.get("FABNET_PROFILES_DIR")
    if env:
        return Path(env)
    return shipped_dir(PROFILES)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise NotFound(f"no such profile file: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def list_profiles(directory: Path | None = None) -> list[str]:
    """Ids (file stems) of every profile in ``directory``, sorted."""
    root = directory or profiles_dir()
    return sorted(p.stem for p in root.glob("*.toml") if p.name != MATERIALS_FILE)


def load_profile(name_or_path: str | Path, directory: Path | None = None) -> MachineProfile:
    """Load one profile by id (``prusa_mk3s``) or by path; raises NotFound or ConfigError."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = (directory or profiles_dir()) / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(list_profiles(directory))
            raise NotFound(f"unknown profile {name_or_path!r}; known: {known}")
    return _load_profile_cached(path.resolve())


@functools.lru_cache(maxsize=64)
def _load_profile_cached(path: Path) -> MachineProfile:
    root = TableReader(_read_toml(path), path, "")
    machine = root.table("machine")
    kind = machine.text("kind", choices=("fdm", "cnc"))
    profile: MachineProfile
    profile = _fdm(path, root, machine) if kind == "fdm" else _cnc(path, root, machine)
    machine.finish()
    root.finish()
    return profile


def _axes(table: TableReader, lo: float, hi: float, with_e: bool = True) -> Axes:
    axes = Axes(
        x=table.number("x", lo, hi),
        y=table.number("y", lo, hi),
        z=table.number("z", lo, hi),
        e=table.number("e", lo, hi) if with_e else 0.0,
    )
    table.finish()
    return axes


def _volume(table: TableReader) -> Volume:
    volume = Volume(
        x_mm=table.number("x_mm", 10, 3000),
        y_mm=table.number("y_mm", 10, 3000),
        z_mm=table.number("z_mm", 10, 3000),
    )
    table.finish()
    return volume


def _gcode(table: TableReader) -> tuple[str, str, tuple[str, ...]]:
    start = table.text("start")
    end = table.text("end")
    forbidden = tuple(cmd.upper() for cmd in table.strings("forbidden"))
    table.finish()
    return start, end, forbidden


def _fdm(path: Path, root: TableReader, machine: TableReader) -> FdmProfile:
    flavour = machine.text("flavour", choices=("marlin", "klipper"))
    extruder = root.table("extruder")
    limits = root.table("limits")
    start, end, forbidden = _gcode(root.table("gcode"))
    volume = _volume(root.table("build_volume"))
    lift_mm, park_x_mm, park_y_mm = _pause(root.table("pause", optional=True), volume)
    profile = FdmProfile(
        id=path.stem,
        name=machine.text("name"),
        flavour=GcodeFlavour(flavour),
        volume=volume,
        nozzle_mm=extruder.number("nozzle_mm", 0.1, 2.0),
        filament_diameter_mm=extruder.number("filament_diameter_mm", 1.0, 3.5),
        max_hotend_c=extruder.number("max_hotend_c", 150, 500),
        max_bed_c=extruder.number("max_bed_c", 0, 150),
        retract_mm=extruder.number("retract_mm", 0, 15),
        retract_speed_mm_s=extruder.number("retract_speed_mm_s", 1, 200),
        max_feed_mm_s=_axes(limits.table("max_feed_mm_s"), 0.1, 2000),
        max_accel_mm_s2=_axes(limits.table("max_accel_mm_s2"), 1, 100000),
        jerk_mm_s=_axes(limits.table("jerk_mm_s"), 0.0, 100),
        print_accel_mm_s2=limits.number("print_accel_mm_s2", 1, 100000),
        travel_accel_mm_s2=limits.number("travel_accel_mm_s2", 1, 100000),
        start_gcode=start,
        end_gcode=end,
        forbidden=forbidden,
        source=machine.text("source"),
        thermal_margin_c=extruder.number("thermal_margin_c", 2, 100, 15.0),
        thermal_hold_s=extruder.number("thermal_hold_s", 5, 600, 60.0),
        pause_lift_mm=lift_mm,
        park_x_mm=park_x_mm,
        park_y_mm=park_y_mm,
    )
    extruder.finish()
    limits.finish()
    return profile


def _pause(table: TableReader, volume: Volume) -> tuple[float, float | None, float | None]:
    """The optional ``[pause]`` table: Z lift (mm) and park point (None: not set), the point
    inside the build volume."""
    lift_mm = table.number("lift_mm", 0, 50, 5.0)
    x = table.number("park_x_mm", 0, volume.x_mm) if table.has("park_x_mm") else None
    y = table.number("park_y_mm", 0, volume.y_mm) if table.has("park_y_mm") else None
    table.finish()
    return lift_mm, x, y


def _cnc(path: Path, root: TableReader, machine: TableReader) -> CncProfile:
    machine.text("flavour", choices=("grbl",))
    spindle = root.table("spindle")
    limits = root.table("limits")
    tools = []
    for table in root.tables("tools"):
        tools.append(
            Tool(
                number=table.integer("number", 0, 999),
                name=table.text("name"),
                diameter_mm=table.number("diameter_mm", 0.1, 50),
                flutes=table.integer("flutes", 1, 8),
                shape=table.text("shape", choices=("flat", "ball", "vbit")),
                max_depth_mm=table.number("max_depth_mm", 0.1, 200),
            )
        )
        table.finish()
    start, end, forbidden = _gcode(root.table("gcode"))
    profile = CncProfile(
        id=path.stem,
        name=machine.text("name"),
        flavour=GcodeFlavour.GRBL,
        volume=_volume(root.table("work_area")),
        spindle_rpm_min=spindle.number("rpm_min", 0, 100000),
        spindle_rpm_max=spindle.number("rpm_max", 100, 100000),
        max_feed_mm_min=_axes(limits.table("max_feed_mm_min"), 1, 100000, with_e=False),
        max_accel_mm_s2=_axes(limits.table("max_accel_mm_s2"), 1, 100000, with_e=False),
        safe_z_mm=limits.number("safe_z_mm", 0.5, 100),
        tools=tuple(tools),
        default_tool=machine.integer("default_tool", 0, 999),
        start_gcode=start,
        end_gcode=end,
        forbidden=forbidden,
        source=machine.text("source"),
    )
    spindle.finish()
    limits.finish()
    if profile.spindle_rpm_min >= profile.spindle_rpm_max:
        raise ConfigError(f"{path}: spindle.rpm_min must be below spindle.rpm_max")
    if not tools:
        raise ConfigError(f"{path}: a CNC profile needs at least one [[tools]] entry")
    try:
        profile.tool()
    except KeyError as exc:
        raise ConfigError(f"{path}: machine.default_tool: {exc.args[0]}") from exc
    return profile


def load_materials(path: Path | None = None) -> Materials:
    """Load the materials table; raises ConfigError naming the file and key on any mistake."""
    return _load_materials_cached((path or profiles_dir() / MATERIALS_FILE).resolve())


@functools.lru_cache(maxsize=8)
def _load_materials_cached(path: Path) -> Materials:
    root = TableReader(_read_toml(path), path, "")
    fdm_root = root.table("fdm")
    cnc_root = root.table("cnc")
    fdm = {key.lower(): _fdm_material(key, fdm_root.table(key)) for key in fdm_root.keys()}
    cnc = {key.lower(): _cnc_material(key, cnc_root.table(key)) for key in cnc_root.keys()}
    fdm_root.finish()
    cnc_root.finish()
    root.finish()
    return Materials(fdm=fdm, cnc=cnc)


def _fdm_material(name: str, t: TableReader) -> FdmMaterial:
    material = FdmMaterial(
        name=name,
        nozzle_c=t.number("nozzle_c", 150, 450),
        first_layer_nozzle_c=t.number("first_layer_nozzle_c", 150, 450),
        bed_c=t.number("bed_c", 0, 150),
        first_layer_bed_c=t.number("first_layer_bed_c", 0, 150),
        fan_percent=t.number("fan_percent", 0, 100),
        density_g_cm3=t.number("density_g_cm3", 0.5, 3.0),
        cost_per_kg=t.number("cost_per_kg", 0, 1000),
        max_volumetric_mm3_s=t.number("max_volumetric_mm3_s", 0.5, 100),
        source=t.text("source"),
    )
    t.finish()
    return material


def _cnc_material(name: str, t: TableReader) -> CncMaterial:
    material = CncMaterial(
        name=name,
        thickness_mm=t.number("thickness_mm", 0.5, 100),
        density_g_cm3=t.number("density_g_cm3", 0.1, 20),
        cost_per_kg=t.number("cost_per_kg", 0, 1000),
        feed_mm_min=t.number("feed_mm_min", 10, 20000),
        plunge_mm_min=t.number("plunge_mm_min", 10, 10000),
        depth_per_pass_mm=t.number("depth_per_pass_mm", 0.05, 20),
        spindle_rpm=t.number("spindle_rpm", 1000, 60000),
        source=t.text("source"),
    )
    t.finish()
    return material
