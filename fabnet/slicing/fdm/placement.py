"""Place parts on a build plate or work area: drop to z = 0, turn to fit, arrange copies in a grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from fabnet.errors import InvalidInput

COPY_GAP_MM = 5.0  # space between copies: at least twice a skirt's distance


@dataclass(frozen=True)
class Placement:
    """Where copies go: each copy's XY offset (mm) added to the placed mesh's coordinates."""

    offsets: tuple[tuple[float, float], ...]
    rotated: bool  # turned 90° about Z so that it fits
    footprint_mm: tuple[float, float]  # one copy's X, Y size after turning


def drop_to_bed(mesh: trimesh.Trimesh, rotate: bool = False) -> trimesh.Trimesh:
    """A copy of ``mesh`` (optionally turned 90° about Z) with its bounding box min at (0,0,0)."""
    placed = mesh.copy()
    if rotate:
        placed.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [0, 0, 1]))
    placed.apply_translation(-np.asanyarray(placed.bounds[0], dtype=np.float64))
    return placed


def _grid(
    size: tuple[float, float], quantity: int, area: tuple[float, float], gap: float
) -> tuple[int, int] | None:
    """(columns, rows) of a grid of ``quantity`` boxes of ``size`` that fits ``area``, or None."""
    sx, sy = size
    ax, ay = area
    if sx > ax or sy > ay:
        return None
    columns = min(quantity, int((ax + gap) // (sx + gap)))
    rows = math.ceil(quantity / columns)
    if rows * sy + (rows - 1) * gap > ay:
        return None
    return columns, rows


def arrange(
    size_mm: tuple[float, float],
    quantity: int,
    area_mm: tuple[float, float],
    margin_mm: float,
    gap_mm: float = COPY_GAP_MM,
    centre: bool = True,
) -> Placement:
    """Offsets for ``quantity`` copies of a ``size_mm`` footprint inside ``area_mm``.

    ``margin_mm`` is kept free on every side (room for a skirt or a cutter). Copies are laid
    out in rows, turned 90° only when that is the only way they fit, and centred on the area
    (or put at the margin from (0, 0) when ``centre`` is False). Raises InvalidInput naming
    the sizes when they do not fit either way.
    """
    usable = (area_mm[0] - 2 * margin_mm, area_mm[1] - 2 * margin_mm)
    for rotated in (False, True):
        size = (size_mm[1], size_mm[0]) if rotated else size_mm
        grid = _grid(size, quantity, usable, gap_mm)
        if grid is None:
            continue
        columns, rows = grid
        used_x = columns * size[0] + (columns - 1) * gap_mm
        used_y = rows * size[1] + (rows - 1) * gap_mm
        x0 = (area_mm[0] - used_x) / 2 if centre else margin_mm
        y0 = (area_mm[1] - used_y) / 2 if centre else margin_mm
        offsets = tuple(
            (x0 + (i % columns) * (size[0] + gap_mm), y0 + (i // columns) * (size[1] + gap_mm))
            for i in range(quantity)
        )
        return Placement(offsets=offsets, rotated=rotated, footprint_mm=size)
    raise InvalidInput(
        f"{quantity} part(s) of {size_mm[0]:.1f} x {size_mm[1]:.1f} mm (+{margin_mm:.1f} mm margin, "
        f"{gap_mm:.1f} mm gaps) do not fit the {area_mm[0]:.0f} x {area_mm[1]:.0f} mm area"
    )
