"""2.5D CNC toolpaths: an outside-profile cut of a part's outline with step-downs and tabs (GRBL)."""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
import shapely.affinity
import trimesh
from numpy.typing import NDArray

from fabnet.errors import InvalidInput
from fabnet.gcode.machine import PART_MASS_COMMENT
from fabnet.profiles import CncMaterial, CncProfile, FdmMaterial, MachineProfile, Tool
from fabnet.slicing.base import SliceResult, SliceSettings
from fabnet.slicing.fdm.placement import arrange

log = logging.getLogger(__name__)

BREAKTHROUGH_MM = 0.2  # cut this far below the stock so the part comes free
TAB_LENGTH_MM = 6.0  # stock left standing along the outline at each holding tab
TAB_HEIGHT_MM = 2.0  # height of stock the tabs keep (from the bottom of the stock)
WORK_MARGIN_MM = 10.0  # free border between the work area's origin/edges and any cut
SPINDLE_DWELL_S = 2.0  # wait for the spindle to reach speed
MIN_TAB_SPACING = 2.0  # a ring shorter than tabs × span × this gets no tabs
ARC_QUAD_SEGS = 16  # arc resolution of the tool-radius offset


def part_outline(mesh: trimesh.Trimesh) -> shapely.Geometry:
    """The part's silhouette seen from above: union of its up-facing triangles in XY (mm)."""
    vertices = np.asanyarray(mesh.vertices, dtype=np.float64)
    faces = np.asanyarray(mesh.faces, dtype=np.int64)
    up = np.asanyarray(mesh.face_normals, dtype=np.float64)[:, 2] > 1e-9
    triangles = vertices[faces[up]][:, :, :2]
    polygons = shapely.polygons(triangles)
    polygons = polygons[shapely.area(polygons) > 1e-9]
    if len(polygons) == 0:
        raise InvalidInput("mesh has no upward-facing area; it has no outline to cut")
    return shapely.union_all(polygons)


def cut_rings(outline: shapely.Geometry, tool: Tool) -> list[NDArray[np.float64]]:
    """Closed tool-centre paths (k, 2) round each island's outside, clockwise (climb cut)."""
    offset = shapely.buffer(outline, tool.diameter_mm / 2.0, quad_segs=ARC_QUAD_SEGS)
    rings = []
    for polygon in shapely.get_parts(offset):
        exterior = shapely.geometry.polygon.orient(shapely.Polygon(polygon.exterior), -1.0).exterior
        rings.append(np.asarray(exterior.coords, dtype=np.float64))
    return rings


def pass_depths(material: CncMaterial, tool: Tool) -> list[float]:
    """Depth (mm, positive down) of each pass, the last one through the stock.

    Raises InvalidInput when the stock is thicker than the tool can reach.
    """
    if material.thickness_mm > tool.max_depth_mm:
        raise InvalidInput(
            f"stock {material.name} is {material.thickness_mm:g} mm thick; "
            f"tool T{tool.number} cuts at most {tool.max_depth_mm:g} mm"
        )
    final = min(material.thickness_mm + BREAKTHROUGH_MM, tool.max_depth_mm)
    count = math.ceil(final / material.depth_per_pass_mm - 1e-9)
    return [min((k + 1) * material.depth_per_pass_mm, final) for k in range(count)]


def tab_spans(length_mm: float, tabs: int, span_mm: float) -> list[tuple[float, float]]:
    """(start, end) distances along a ring of ``length_mm`` where tabs stand, evenly spaced."""
    if tabs == 0 or length_mm < tabs * span_mm * MIN_TAB_SPACING:
        return []
    centres = (np.arange(tabs) + 0.5) * length_mm / tabs
    return [(c - span_mm / 2.0, c + span_mm / 2.0) for c in centres.tolist()]


def split_at(
    ring: NDArray[np.float64], spans: list[tuple[float, float]]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The ring's points with the tab ends inserted, and per segment whether it is in a tab."""
    step = np.hypot(*np.diff(ring, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(step)])
    cuts = np.array([d for span in spans for d in span], dtype=np.float64)
    at = np.unique(np.concatenate([along, cuts]))
    points = np.column_stack([np.interp(at, along, ring[:, 0]), np.interp(at, along, ring[:, 1])])
    middle = (at[:-1] + at[1:]) / 2.0
    in_tab = np.zeros(len(middle), dtype=bool)
    for lo, hi in spans:
        in_tab |= (middle > lo) & (middle < hi)
    return points, in_tab


class CncToolpathGenerator:
    """Outside-profile cuts for a CNC router; implements the ``Slicer`` protocol."""

    name = "cnc"

    def slice(
        self,
        mesh: trimesh.Trimesh,
        profile: MachineProfile,
        material: FdmMaterial | CncMaterial,
        settings: SliceSettings,
    ) -> SliceResult:
        """GRBL G-code cutting ``settings.quantity`` copies of the part's outline from sheet stock.

        Z = 0 is the top of the stock. Raises InvalidInput for a non-CNC profile or material,
        an unknown tool, stock deeper than the tool reaches, or parts that do not fit.
        """
        if not isinstance(profile, CncProfile):
            raise InvalidInput(f"profile {profile.id} is not a CNC machine; use an FDM slicer")
        if not isinstance(material, CncMaterial):
            raise InvalidInput(f"material {material.name} is not a CNC stock")
        try:
            tool = profile.tool(settings.tool_number)
        except KeyError as exc:
            raise InvalidInput(f"tool_number: {exc.args[0]}") from exc
        depths = pass_depths(material, tool)
        outline = part_outline(mesh)
        x0, y0, x1, y1 = outline.bounds
        d = tool.diameter_mm
        placement = arrange(
            (x1 - x0 + d, y1 - y0 + d),
            settings.quantity,
            (profile.volume.x_mm, profile.volume.y_mm),
            WORK_MARGIN_MM,
            centre=False,
        )
        if placement.rotated:
            outline = shapely.affinity.rotate(outline, 90.0, origin=(0.0, 0.0))
            x0, y0, _, _ = outline.bounds
        lines = _program_start(profile, material)
        # what the parts weigh: the ledger's "how much material" for a cut, read by the analyser
        part_g = outline.area * material.thickness_mm / 1000.0 * material.density_g_cm3
        lines.insert(2, f"{PART_MASS_COMMENT} {part_g * len(placement.offsets):.2f}")
        for ox, oy in placement.offsets:
            placed = shapely.affinity.translate(outline, ox + d / 2 - x0, oy + d / 2 - y0)
            for ring in cut_rings(placed, tool):
                lines += _cut_ring(ring, depths, profile, material, tool, settings.tabs)
        lines += (
            profile.end_gcode.replace("{safe_z}", f"{profile.safe_z_mm:g}").strip("\n").splitlines()
        )
        notes = [
            f"{len(depths)} passes to {depths[-1]:.2f} mm with T{tool.number} ({tool.diameter_mm} mm)"
        ]
        if placement.rotated:
            notes.append("turned 90° about Z to fit the work area")
        return SliceResult(gcode="\n".join(lines) + "\n", slicer=self.name, notes=tuple(notes))


def _feeds(profile: CncProfile, material: CncMaterial) -> tuple[float, float]:
    """(cutting feed, plunge feed) in mm/min, capped by the machine."""
    feed = min(material.feed_mm_min, profile.max_feed_mm_min.x, profile.max_feed_mm_min.y)
    return feed, min(material.plunge_mm_min, profile.max_feed_mm_min.z)


def _program_start(profile: CncProfile, material: CncMaterial) -> list[str]:
    """Profile start, GRBL modes, safe height, spindle on at a clamped speed and a dwell."""
    rpm = min(max(material.spindle_rpm, profile.spindle_rpm_min), profile.spindle_rpm_max)
    start = profile.start_gcode.replace("{safe_z}", f"{profile.safe_z_mm:g}").strip("\n")
    return [
        "; generated by fabnet cnc toolpath generator",
        f"; profile: {profile.id}, stock: {material.name} {material.thickness_mm:g} mm",
        *start.splitlines(),
        "G21 G90 G17 G94",
        f"G0 Z{profile.safe_z_mm:.3f}",
        f"M3 S{rpm:.0f}",
        f"G4 P{SPINDLE_DWELL_S:g}",
    ]


def _cut_ring(
    ring: NDArray[np.float64],
    depths: list[float],
    profile: CncProfile,
    material: CncMaterial,
    tool: Tool,
    tabs: int,
) -> list[str]:
    """Step down round one closed path; passes below the tab tops lift over the tab spans."""
    feed, plunge = _feeds(profile, material)
    length = float(np.hypot(*np.diff(ring, axis=0).T).sum())
    spans = tab_spans(length, tabs, TAB_LENGTH_MM + tool.diameter_mm)
    points, in_tab = split_at(ring, spans)
    tab_z = -(material.thickness_mm - TAB_HEIGHT_MM)
    lines = [f"G0 Z{profile.safe_z_mm:.3f}", f"G0 X{points[0, 0]:.3f} Y{points[0, 1]:.3f}"]
    xs, ys = points[1:, 0].tolist(), points[1:, 1].tolist()
    for depth in depths:
        z_cut = -depth
        lines.append(f"G1 Z{z_cut:.3f} F{plunge:.0f}")
        z_now = z_cut
        first = True
        for x, y, tab in zip(xs, ys, in_tab.tolist(), strict=True):
            z_want = max(z_cut, tab_z) if tab else z_cut
            if z_want != z_now:
                lines.append(f"G1 Z{z_want:.3f} F{plunge:.0f}")
                z_now, first = z_want, True
            lines.append(f"G1 X{x:.3f} Y{y:.3f} F{feed:.0f}" if first else f"G1 X{x:.3f} Y{y:.3f}")
            first = False
    lines.append(f"G0 Z{profile.safe_z_mm:.3f}")
    return lines
