"""Write FDM moves as Marlin/Klipper G-code: relative extrusion, retraction, capped feeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from fabnet.profiles import FdmMaterial, FdmProfile
from fabnet.slicing.fdm.regions import PathKind, ToolPath

MIN_RETRACT_TRAVEL_MM = 1.5  # shorter travels never retract
FIRST_LAYER_SPEED_MM_S = 20.0
TRAVEL_SPEED_MM_S = 150.0
SPEEDS_MM_S: dict[PathKind, float] = {
    PathKind.SKIRT: 30.0,
    PathKind.OUTER_WALL: 35.0,
    PathKind.INNER_WALL: 45.0,
    PathKind.SOLID_INFILL: 60.0,
    PathKind.SPARSE_INFILL: 80.0,
}


@dataclass(frozen=True)
class Feeds:
    """Speeds (mm/s) for one layer after the machine's and the material's caps."""

    by_kind: dict[PathKind, float]
    travel_mm_s: float
    z_mm_s: float
    retract_mm_s: float


def layer_feeds(
    profile: FdmProfile, material: FdmMaterial, width_mm: float, height_mm: float, first: bool
) -> Feeds:
    """Feeds capped by the profile's max XY/E feeds and the material's volumetric limit."""
    xy_cap = min(profile.max_feed_mm_s.x, profile.max_feed_mm_s.y)
    area_f = math.pi * (profile.filament_diameter_mm / 2.0) ** 2
    e_cap = (
        profile.max_feed_mm_s.e * area_f / (width_mm * height_mm)
        if profile.max_feed_mm_s.e
        else xy_cap
    )
    volume_cap = material.max_volumetric_mm3_s / (width_mm * height_mm)
    cap = min(xy_cap, volume_cap, e_cap)
    by_kind = {
        kind: min(FIRST_LAYER_SPEED_MM_S if first else speed, cap)
        for kind, speed in SPEEDS_MM_S.items()
    }
    retract = min(profile.retract_speed_mm_s, profile.max_feed_mm_s.e or profile.retract_speed_mm_s)
    return Feeds(by_kind, min(TRAVEL_SPEED_MM_S, xy_cap), profile.max_feed_mm_s.z, retract)


class GcodeWriter:
    """Accumulates G-code lines; tracks position, feed and retraction so nothing repeats."""

    def __init__(self, profile: FdmProfile, width_mm: float) -> None:
        self.lines: list[str] = []
        self.profile = profile
        self.width_mm = width_mm
        self.filament_area_mm2 = math.pi * (profile.filament_diameter_mm / 2.0) ** 2
        self.x = math.nan
        self.y = math.nan
        self.z = 0.0
        self.retracted = False
        self.filament_mm = 0.0

    def raw(self, text: str) -> None:
        """Append lines verbatim (start/end G-code, temperatures, comments)."""
        self.lines.extend(line for line in text.strip("\n").splitlines())

    def move_z(self, z_mm: float, feed_mm_s: float) -> None:
        """Go to layer height ``z_mm``."""
        self.z = z_mm
        self.lines.append(f"G1 Z{z_mm:.3f} F{feed_mm_s * 60:.0f}")

    def retract(self, feeds: Feeds) -> None:
        if not self.retracted and self.profile.retract_mm > 0:
            self.lines.append(f"G1 E{-self.profile.retract_mm:.4f} F{feeds.retract_mm_s * 60:.0f}")
            self.retracted = True

    def unretract(self, feeds: Feeds) -> None:
        if self.retracted:
            self.lines.append(f"G1 E{self.profile.retract_mm:.4f} F{feeds.retract_mm_s * 60:.0f}")
            self.retracted = False

    def travel(self, x: float, y: float, feeds: Feeds, retract: bool) -> None:
        """Rapid move to (x, y) mm, retracting first when asked."""
        if retract:
            self.retract(feeds)
        self.lines.append(f"G0 X{x:.3f} Y{y:.3f} F{feeds.travel_mm_s * 60:.0f}")
        self.x, self.y = x, y

    def extrude(
        self, points: NDArray[np.float64], height_mm: float, feed_mm_s: float, feeds: Feeds
    ) -> None:
        """Extrude along ``points`` (k, 2) mm starting from the current position."""
        self.unretract(feeds)
        start = np.array([[self.x, self.y]])
        length = np.hypot(*np.diff(np.vstack([start, points]), axis=0).T)
        e = length * (self.width_mm * height_mm / self.filament_area_mm2)
        self.filament_mm += float(e.sum())
        xs, ys, es = points[:, 0].tolist(), points[:, 1].tolist(), e.tolist()
        out = [f"G1 X{xs[0]:.3f} Y{ys[0]:.3f} E{es[0]:.5f} F{feed_mm_s * 60:.0f}"]
        out += [
            f"G1 X{x:.3f} Y{y:.3f} E{de:.5f}"
            for x, y, de in zip(xs[1:], ys[1:], es[1:], strict=True)
        ]
        self.lines.extend(out)
        self.x, self.y = xs[-1], ys[-1]


def write_paths(
    writer: GcodeWriter,
    paths: tuple[ToolPath, ...] | list[ToolPath],
    offset: tuple[float, float],
    travel_region: shapely.Geometry,
    height_mm: float,
    feeds: Feeds,
) -> None:
    """Print ``paths`` shifted by ``offset`` mm; travels retract when long and leaving the region.

    Whether each travel stays inside ``travel_region`` (part coordinates) is decided for the
    whole layer with one vectorised shapely call.
    """
    if not paths:
        return
    ox, oy = offset
    starts = np.array([p.points[0] for p in paths])
    ends = np.array([p.points[0] if p.closed else p.points[-1] for p in paths])
    prev = np.vstack([[writer.x - ox, writer.y - oy], ends[:-1]])
    length = np.hypot(*(starts - prev).T)
    long_travel = ~(length < MIN_RETRACT_TRAVEL_MM)  # NaN (first move) counts as long
    inside = np.zeros(len(paths), dtype=bool)
    check = np.flatnonzero(long_travel & np.isfinite(length))
    if len(check):
        segs = np.stack([prev[check], starts[check]], axis=1)
        inside[check] = shapely.within(shapely.linestrings(segs), travel_region)
    retract = long_travel & ~inside
    for path, needs_retract in zip(paths, retract.tolist(), strict=True):
        pts = path.points + (ox, oy)
        if path.closed:
            pts = np.vstack([pts[1:], pts[:1]])
        writer.travel(
            float(path.points[0, 0] + ox), float(path.points[0, 1] + oy), feeds, needs_retract
        )
        writer.extrude(pts, height_mm, feeds.by_kind[path.kind], feeds)
