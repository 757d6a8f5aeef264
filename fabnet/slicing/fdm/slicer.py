"""The built-in FDM slicer: place, section, plan each layer once, print it for every copy."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import numpy as np
import shapely
import trimesh

from fabnet.errors import InvalidInput
from fabnet.profiles import CncMaterial, FdmMaterial, FdmProfile, MachineProfile
from fabnet.slicing.base import SliceResult, SliceSettings
from fabnet.slicing.fdm.emit import GcodeWriter, layer_feeds, write_paths
from fabnet.slicing.fdm.placement import arrange, drop_to_bed
from fabnet.slicing.fdm.regions import (
    LayerPlan,
    PathKind,
    ToolPath,
    inner_regions,
    plan_layer,
    skin_regions,
)
from fabnet.slicing.fdm.sections import layer_heights, section_layers

log = logging.getLogger(__name__)

EXTRUSION_WIDTH_FACTOR = 1.125  # extrusion width = nozzle × this (0.45 mm for a 0.4 nozzle)
SKIRT_DISTANCE_MM = 3.0
HEADER_SCAN_CHARS = 2000  # the header block sits within the first characters of the file

ProgressCallback = Callable[[int, int], None]  # (layers done, layers in all)


class BuiltinSlicer:
    """Slices a prepared mesh (mm) with trimesh-free vectorised sections and shapely offsets."""

    name = "builtin"

    def __init__(self, progress: ProgressCallback | None = None) -> None:
        self.progress = progress

    def slice(
        self,
        mesh: trimesh.Trimesh,
        profile: MachineProfile,
        material: FdmMaterial | CncMaterial,
        settings: SliceSettings,
    ) -> SliceResult:
        """G-code for ``settings.quantity`` copies of ``mesh`` on ``profile``'s bed.

        Raises InvalidInput when the profile or material is not FDM, or when the copies do
        not fit the build volume (the message names the sizes).
        """
        if not isinstance(profile, FdmProfile):
            raise InvalidInput(f"profile {profile.id} is not an FDM printer; use the cnc generator")
        if not isinstance(material, FdmMaterial):
            raise InvalidInput(f"material {material.name} is not a filament")
        started = time.perf_counter()
        width = profile.nozzle_mm * EXTRUSION_WIDTH_FACTOR
        size = tuple(float(v) for v in mesh.extents)
        if size[2] > profile.volume.z_mm:
            raise InvalidInput(
                f"part is {size[2]:.1f} mm tall; {profile.id} builds up to {profile.volume.z_mm:.0f} mm"
            )
        margin = (
            (SKIRT_DISTANCE_MM + settings.skirt_loops * width + 1.0)
            if settings.skirt_loops
            else 1.0
        )
        placement = arrange(
            (size[0], size[1]),
            settings.quantity,
            (profile.volume.x_mm, profile.volume.y_mm),
            margin,
        )
        part = drop_to_bed(mesh, rotate=placement.rotated)
        plans = self._plan(part, settings, width)
        writer = GcodeWriter(profile, width)
        _start(writer, profile, material)
        skirt = _skirt(plans[0], placement.offsets, settings.skirt_loops, width)
        for plan in plans:
            _write_layer(writer, plan, placement.offsets, skirt, profile, material, settings, width)
        writer.raw(profile.end_gcode)
        body = "\n".join(writer.lines) + "\n"
        notes = [
            f"{len(plans)} layers, {settings.quantity} cop{'y' if settings.quantity == 1 else 'ies'}"
        ]
        if placement.rotated:
            notes.append("turned 90° about Z to fit the bed")
        log.info("sliced %d layers in %.2f s", len(plans), time.perf_counter() - started)
        return SliceResult(
            gcode=_with_header(body, profile, material, len(plans)),
            slicer=self.name,
            notes=tuple(notes),
        )

    def _plan(
        self, part: trimesh.Trimesh, settings: SliceSettings, width: float
    ) -> list[LayerPlan]:
        """Section every layer, then plan walls, skins and infill for one copy."""
        heights = layer_heights(float(part.extents[2]), settings.layer_height_mm)
        solids = section_layers(part, heights)
        inners = inner_regions(solids, settings.walls, width)
        skins = skin_regions(solids, inners, settings.top_layers, settings.bottom_layers)
        plans: list[LayerPlan] = []
        for i, solid in enumerate(solids):
            plans.append(
                plan_layer(
                    i, solid, inners[i], skins[i], settings.walls, width, settings.infill_percent
                )
            )
            if self.progress is not None:
                self.progress(i + 1, len(solids))
        return plans


def _start(writer: GcodeWriter, profile: FdmProfile, material: FdmMaterial) -> None:
    """Profile start G-code with first-layer temperatures filled in."""
    start = profile.start_gcode.replace("{nozzle_first_c}", f"{material.first_layer_nozzle_c:.0f}")
    writer.raw(start.replace("{bed_first_c}", f"{material.first_layer_bed_c:.0f}"))
    writer.raw("M83 ; relative extrusion\nM107 ; fan off for the first layer")


def _skirt(
    first: LayerPlan, offsets: tuple[tuple[float, float], ...], loops: int, width: float
) -> list[ToolPath]:
    """Skirt loops around the convex hull of every copy's first layer, in bed coordinates."""
    outlines = [p.points + o for p in first.paths if p.kind is PathKind.OUTER_WALL for o in offsets]
    if loops == 0 or not outlines:
        return []
    hull = shapely.convex_hull(shapely.multipoints(np.vstack(outlines)))
    paths = []
    for k in range(loops):
        ring = shapely.buffer(hull, SKIRT_DISTANCE_MM + k * width, quad_segs=8).exterior
        paths.append(ToolPath(PathKind.SKIRT, np.asarray(ring.coords)[:-1], closed=True))
    return paths


def _write_layer(
    writer: GcodeWriter,
    plan: LayerPlan,
    offsets: tuple[tuple[float, float], ...],
    skirt: list[ToolPath],
    profile: FdmProfile,
    material: FdmMaterial,
    settings: SliceSettings,
    width: float,
) -> None:
    """One layer: markers, Z, temperature and fan changes, skirt, then each copy."""
    height = settings.layer_height_mm
    z = (plan.index + 1) * height
    feeds = layer_feeds(profile, material, width, height, first=plan.index == 0)
    writer.lines.append(f";LAYER:{plan.index}")
    writer.lines.append(f";Z:{z:.3f}")
    if plan.index == 1:
        writer.lines.append(f"M104 S{material.nozzle_c:.0f} ; nozzle to printing temperature")
        writer.lines.append(f"M140 S{material.bed_c:.0f} ; bed to printing temperature")
        fan = round(255 * material.fan_percent / 100.0)
        writer.lines.append(f"M106 S{fan}" if fan > 0 else "M107")
    writer.retract(feeds)
    writer.move_z(z, feeds.z_mm_s)
    if plan.index == 0 and skirt:
        write_paths(writer, skirt, (0.0, 0.0), shapely.Polygon(), height, feeds)
    for offset in offsets:
        if not np.isnan(writer.x):
            writer.retract(feeds)  # moving to another copy always crosses its walls
        write_paths(writer, plan.paths, offset, plan.travel_region, height, feeds)


HEADER_KEYS = ("layer_count", "estimated_time_s", "filament_mm", "filament_g")
_HEADER_LINE = re.compile(r"^;(\w+)=([-\d.]+)$", re.M)


def read_header(gcode: str) -> dict[str, float] | None:
    """The analyser's figures from the header this slicer writes, or None when absent."""
    found = {k: float(v) for k, v in _HEADER_LINE.findall(gcode[:HEADER_SCAN_CHARS])}
    return found if all(key in found for key in HEADER_KEYS) else None


def _with_header(body: str, profile: FdmProfile, material: FdmMaterial, layers: int) -> str:
    """Prefix the body with a comment block of the analyser's figures for the whole file."""
    from fabnet.gcode import analyse

    figures = analyse(body, profile, material)
    header = [
        "; generated by fabnet builtin slicer",
        f"; profile: {profile.id}, material: {material.name}",
        f";layer_count={layers}",
        f";estimated_time_s={figures.time_s:.0f}",
        f";filament_mm={figures.filament_mm:.1f}",
        f";filament_g={figures.grams:.2f}",
        "",
    ]
    return "\n".join(header) + body
