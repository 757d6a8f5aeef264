"""What one layer prints: wall loops, solid skins and sparse infill, as ordered 2D tool paths."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

WALL_QUAD_SEGS = 4  # arc resolution of rounded offset corners
INFILL_OVERLAP = 0.25  # infill reaches this fraction of a width into the innermost wall
MIN_PATH_MM = 0.3  # shorter extrusions are dropped: the nozzle cannot lay them
PATH_TOLERANCE_MM = 0.025  # wall vertices this close to a straight line are dropped
LINK_FACTOR = 2.0  # lines are joined when the hop is at most this many line spacings
ACTIVE_CHAINS = 32  # finished chains are forgotten beyond this many open ones
LINK_SLACK_MM = 0.01  # a hop this close to the region counts as inside it


class PathKind(enum.Enum):
    """What an extrusion is; it decides the speed."""

    SKIRT = "skirt"
    OUTER_WALL = "outer_wall"
    INNER_WALL = "inner_wall"
    SOLID_INFILL = "solid_infill"
    SPARSE_INFILL = "sparse_infill"


@dataclass(frozen=True, eq=False)
class ToolPath:
    """One extrusion: ``points`` (k, 2) in mm; a closed path returns to its first point."""

    kind: PathKind
    points: NDArray[np.float64]
    closed: bool


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """One layer's ordered paths and the region travel may cross without retracting."""

    index: int
    paths: tuple[ToolPath, ...]
    travel_region: shapely.Geometry


def inner_regions(
    solids: Sequence[shapely.Geometry], walls: int, width_mm: float
) -> list[shapely.Geometry]:
    """The area inside the walls of each layer (where skins and infill go)."""
    offset = -(walls - INFILL_OVERLAP) * width_mm
    return list(shapely.buffer(np.asarray(solids, dtype=object), offset, quad_segs=WALL_QUAD_SEGS))


def skin_regions(
    solids: Sequence[shapely.Geometry],
    inners: Sequence[shapely.Geometry],
    top_layers: int,
    bottom_layers: int,
) -> list[shapely.Geometry]:
    """Per layer, the part of ``inners`` within ``top_layers``/``bottom_layers`` of a surface.

    A point is buried when every layer in that span above and below also has solid there;
    the rest of the inner area must be printed solid.
    """
    n = len(solids)
    empty = shapely.Polygon()
    result: list[shapely.Geometry] = []
    for i in range(n):
        if inners[i].is_empty:
            result.append(empty)
            continue
        span = [*range(i + 1, i + 1 + top_layers), *range(i - bottom_layers, i)]
        if any(j < 0 or j >= n for j in span):
            result.append(inners[i])
            continue
        buried = inners[i]
        for j in span:
            buried = shapely.intersection(buried, solids[j])
            if buried.is_empty:
                break
        result.append(shapely.difference(inners[i], buried))
    return result


def wall_loops(
    solid: shapely.Geometry, walls: int, width_mm: float
) -> tuple[list[list[ToolPath]], shapely.Geometry]:
    """Wall loops per island, innermost first so the outer wall is laid against them, and the
    area inside the innermost wall's centre line (travel there crosses no wall)."""
    islands = shapely.get_parts(solid)
    if len(islands) == 0:
        return [], shapely.Polygon()
    offsets = [
        shapely.buffer(islands, -(0.5 + k) * width_mm, quad_segs=WALL_QUAD_SEGS)
        for k in range(walls)
    ]
    # Only coordinates are used from here on, so topology need not be preserved.
    per_wall = [shapely.simplify(o, PATH_TOLERANCE_MM, preserve_topology=False) for o in offsets]
    groups: list[list[ToolPath]] = []
    for island in range(len(islands)):
        paths: list[ToolPath] = []
        for k in reversed(range(walls)):
            kind = PathKind.OUTER_WALL if k == 0 else PathKind.INNER_WALL
            for polygon in shapely.get_parts(per_wall[k][island]):
                for ring in (polygon.exterior, *polygon.interiors):
                    coords = np.asarray(ring.coords, dtype=np.float64)[:-1]
                    if len(coords) >= 3 and ring.length >= 2 * MIN_PATH_MM:
                        paths.append(ToolPath(kind, coords, closed=True))
        if paths:
            groups.append(paths)
    innermost = shapely.get_parts(offsets[-1])
    return groups, shapely.multipolygons(innermost[shapely.get_type_id(innermost) == 3])


def order_groups(groups: list[list[ToolPath]], start: tuple[float, float]) -> list[ToolPath]:
    """Visit groups nearest-first (by first vertex), keeping each group's own order."""
    if not groups:
        return []
    firsts = np.array([g[0].points[0] for g in groups])
    remaining = np.ones(len(groups), dtype=bool)
    here = np.asarray(start, dtype=np.float64)
    ordered: list[ToolPath] = []
    for _ in range(len(groups)):
        dist = np.where(remaining, ((firsts - here) ** 2).sum(axis=1), np.inf)
        pick = int(np.argmin(dist))
        remaining[pick] = False
        for path in groups[pick]:
            nearest = int(np.argmin(((path.points - here) ** 2).sum(axis=1)))
            path = ToolPath(path.kind, np.roll(path.points, -nearest, axis=0), closed=True)
            ordered.append(path)
            here = path.points[0]
    return ordered


def line_fill(
    region: shapely.Geometry, spacing_mm: float, angle_deg: float, kind: PathKind
) -> list[list[ToolPath]]:
    """Parallel lines ``spacing_mm`` apart at ``angle_deg`` clipped to ``region`` (even-odd).

    A scanline fill over every ring edge at once; lines sit on a grid fixed to the origin, so
    sparse infill stacks from layer to layer. Returns runs of lines in serpentine order (every
    other line reversed), each run a chain of lines that overlap their neighbours.
    """
    if region.is_empty or spacing_mm <= 0:
        return []
    theta = math.radians(angle_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    rings, part_of_ring = shapely.get_rings(shapely.get_parts(region), return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    local = coords @ np.array([[cos_t, -sin_t], [sin_t, cos_t]])  # rotate by -angle
    same = ring[1:] == ring[:-1]
    a, b = local[:-1][same], local[1:][same]
    y_lo, y_hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    k_lo = np.ceil(y_lo / spacing_mm).astype(np.int64)
    k_hi = np.ceil(y_hi / spacing_mm).astype(np.int64)  # scanline y in [y_lo, y_hi)
    count = np.maximum(k_hi - k_lo, 0)
    edge = np.repeat(np.arange(len(a)), count)
    k = np.repeat(k_lo - np.cumsum(count) + count, count) + np.arange(len(edge))
    a_e, b_e = a[edge], b[edge]
    x = a_e[:, 0] + (k * spacing_mm - a_e[:, 1]) * (b_e[:, 0] - a_e[:, 0]) / (b_e[:, 1] - a_e[:, 1])
    order = np.lexsort((x, k))
    if len(order) % 2:  # a ring that is not closed; crossings cannot be paired safely
        return []
    x, k = x[order], k[order]
    part = part_of_ring[ring[:-1][same]][edge][order][0::2]
    x0, x1, kk = x[0::2], x[1::2], k[0::2]
    keep = x1 - x0 >= MIN_PATH_MM
    x0, x1, kk, part = x0[keep], x1[keep], kk[keep], part[keep]
    chain = _chains(kk, x0, x1, part)
    snake = np.lexsort((kk, chain))
    x0, x1, kk, chain = x0[snake], x1[snake], kk[snake], chain[snake]
    odd = kk % 2 == 1
    ys = kk * spacing_mm
    heads = np.column_stack([np.where(odd, x1, x0), ys])
    tails = np.column_stack([np.where(odd, x0, x1), ys])
    ends = np.stack([heads, tails], axis=1) @ np.array([[cos_t, sin_t], [-sin_t, cos_t]])
    runs = np.split(ends, np.flatnonzero(np.diff(chain)) + 1)
    return [[ToolPath(kind, seg, closed=False) for seg in run] for run in runs if len(run)]


def _chains(
    k: NDArray[np.int64], x0: NDArray[np.float64], x1: NDArray[np.float64], part: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Chain id per scanline segment (sorted by part, line, x): a chain takes one segment per
    line, each overlapping the previous one, so serpentine runs never jump across a hole."""
    chain = np.empty(len(k), dtype=np.int64)
    ends: dict[int, tuple[int, float, float, int]] = {}  # chain -> (line, x0, x1, part)
    next_id = 0
    for i, (ki, a, b, pi) in enumerate(
        zip(k.tolist(), x0.tolist(), x1.tolist(), part.tolist(), strict=True)
    ):
        found = -1
        for cid, (kc, ca, cb, pc) in ends.items():
            if kc == ki - 1 and pc == pi and a < cb and ca < b:
                found = cid
                break
        if found < 0:
            found, next_id = next_id, next_id + 1
        ends[found] = (ki, a, b, pi)
        chain[i] = found
        if len(ends) > ACTIVE_CHAINS:
            ends = {c: e for c, e in ends.items() if e[0] >= ki - 1}
    return chain


def order_runs(runs: list[list[ToolPath]], start: tuple[float, float]) -> list[ToolPath]:
    """Visit runs of open paths nearest-first; a run may be walked backwards."""
    remaining = list(runs)
    here = np.asarray(start, dtype=np.float64)
    ordered: list[ToolPath] = []
    while remaining:
        heads = np.array([r[0].points[0] for r in remaining])
        tails = np.array([r[-1].points[-1] for r in remaining])
        d_head = ((heads - here) ** 2).sum(axis=1)
        d_tail = ((tails - here) ** 2).sum(axis=1)
        i_head, i_tail = int(np.argmin(d_head)), int(np.argmin(d_tail))
        if d_tail[i_tail] < d_head[i_head]:
            run = [
                ToolPath(p.kind, p.points[::-1], closed=False)
                for p in reversed(remaining.pop(i_tail))
            ]
        else:
            run = remaining.pop(i_head)
        ordered.extend(run)
        here = run[-1].points[-1]
    return ordered


def link_lines(
    paths: list[ToolPath], region: shapely.Geometry, max_link_mm: float
) -> list[ToolPath]:
    """Join consecutive lines into zig-zags where the hop between them is short and inside
    ``region``, so the nozzle keeps extruding instead of travelling and retracting."""
    if len(paths) < 2:
        return paths
    ends = np.array([p.points[-1] for p in paths[:-1]])
    starts = np.array([p.points[0] for p in paths[1:]])
    near = np.flatnonzero(np.hypot(*(starts - ends).T) <= max_link_mm)
    linked = np.zeros(len(paths) - 1, dtype=bool)
    if len(near):
        # Hops are at most two line spacings long: checking their middles is enough, with a
        # little slack because a hop along the region's edge lies on its boundary.
        middles = shapely.points((ends[near] + starts[near]) / 2.0)
        linked[near] = shapely.distance(middles, region) <= LINK_SLACK_MM
    out: list[ToolPath] = []
    run = [paths[0].points]
    for i, joined in enumerate(linked.tolist()):
        if not joined:
            out.append(ToolPath(paths[0].kind, np.vstack(run), closed=False))
            run = []
        run.append(paths[i + 1].points)
    out.append(ToolPath(paths[0].kind, np.vstack(run), closed=False))
    return out


def plan_layer(
    index: int,
    solid: shapely.Geometry,
    inner: shapely.Geometry,
    skin: shapely.Geometry,
    walls: int,
    width_mm: float,
    infill_percent: float,
) -> LayerPlan:
    """Walls, then solid skin lines, then sparse infill for one layer, each group ordered."""
    angle = 45.0 if index % 2 == 0 else -45.0
    here: tuple[float, float] = (0.0, 0.0)
    groups, travel = wall_loops(solid, walls, width_mm)
    walls_paths = order_groups(groups, here)
    if walls_paths:
        here = (float(walls_paths[-1].points[0, 0]), float(walls_paths[-1].points[0, 1]))
    solid_paths = order_runs(line_fill(skin, width_mm, angle, PathKind.SOLID_INFILL), here)
    solid_paths = link_lines(solid_paths, skin, LINK_FACTOR * width_mm)
    if solid_paths:
        here = (float(solid_paths[-1].points[-1, 0]), float(solid_paths[-1].points[-1, 1]))
    sparse: list[ToolPath] = []
    if infill_percent > 0:
        sparse_region = shapely.difference(inner, skin)
        spacing = width_mm * 100.0 / infill_percent
        sparse = order_runs(line_fill(sparse_region, spacing, angle, PathKind.SPARSE_INFILL), here)
        sparse = link_lines(sparse, sparse_region, LINK_FACTOR * spacing)
    return LayerPlan(index, (*walls_paths, *solid_paths, *sparse), travel)
