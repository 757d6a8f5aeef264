"""Layer previews of G-code: the moves of one layer as SVG, extrusion (or cutting) and travel
drawn apart, in one frame for every layer of the file so stepping through layers keeps still."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fabnet.errors import NotFound
from fabnet.gcode.machine import MachineState
from fabnet.gcode.parser import parse
from fabnet.profiles.model import CncProfile, MachineProfile

Z_DECIMALS = 2  # layers are distinct Z heights of working moves, rounded to 0.01 mm
SIZE_PX = 480
MARGIN_MM = 2.0
FRAME_QUANTILES = (0.005, 0.995)  # share of working-move ends left outside the frame
CACHE_FILES = 8


@dataclass(frozen=True)
class LayerModel:
    """Every move of a file: ``segments`` (n, 4) x0 y0 x1 y1 mm, ``working`` (n,) True for
    extruding (FDM) or feed (CNC) moves, ``layer`` (n,) index into ``layer_z`` (k,) mm."""

    segments: NDArray[np.float64]
    working: NDArray[np.bool_]
    layer: NDArray[np.int64]
    layer_z: NDArray[np.float64]
    bounds: tuple[float, float, float, float]  # x0, y0, x1, y1 of working moves, mm

    @property
    def layers(self) -> int:
        return len(self.layer_z)


def build_model(source: str | Path, profile: MachineProfile | None = None) -> LayerModel:
    """Read G-code ``source`` (path or text) into a ``LayerModel``; GcodeError on a bad line."""
    cnc = isinstance(profile, CncProfile)
    state = MachineState(profile, plan=False)
    rows: list[tuple[float, float, float, float, float, bool]] = []
    for line in parse(source):
        x0, y0, e0 = state.mx, state.my, state.net_e
        state.execute(line)
        if not state.moved:
            continue
        if cnc:
            working = state.motion != "G0"
        else:
            working = state.net_e > e0
        if state.mx == x0 and state.my == y0:
            continue  # a pure Z or E move draws nothing from above
        rows.append((x0, y0, state.mx, state.my, state.mz, working))
    if not rows:
        empty = np.zeros((0, 4))
        return LayerModel(
            empty, np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0), (0, 0, 1, 1)
        )
    data = np.array(rows, dtype=np.float64)
    segments, z = data[:, :4], np.round(data[:, 4], Z_DECIMALS)
    work: NDArray[np.bool_] = data[:, 5] > 0.5
    layer_z = np.unique(z[work]) if work.any() else np.unique(z)
    layer = np.clip(np.searchsorted(layer_z, z, side="right") - 1, 0, len(layer_z) - 1)
    frame = segments[work] if work.any() else segments
    xs, ys = frame[:, [0, 2]].ravel(), frame[:, [1, 3]].ravel()
    # quantiles, so a purge line along the bed's edge does not shrink the part to a dot
    (x0, x1), (y0, y1) = np.quantile(xs, FRAME_QUANTILES), np.quantile(ys, FRAME_QUANTILES)
    bounds = (
        float(x0) - MARGIN_MM,
        float(y0) - MARGIN_MM,
        float(x1) + MARGIN_MM,
        float(y1) + MARGIN_MM,
    )
    return LayerModel(segments, work, layer.astype(np.int64), layer_z, bounds)


def layer_svg(model: LayerModel, n: int) -> str:
    """SVG of layer ``n`` (0-based): working moves as solid lines, travel dashed.

    Raises NotFound when the file has no layer ``n``."""
    if not 0 <= n < model.layers:
        raise NotFound(f"layer {n} not found: the file has layers 0..{model.layers - 1}")
    x0, y0, x1, y1 = model.bounds
    span = max(x1 - x0, y1 - y0) or 1.0
    scale = SIZE_PX / span
    pick = model.layer == n
    seg = model.segments[pick]
    work = model.working[pick]
    px = (seg[:, [0, 2]] - x0) * scale
    py = SIZE_PX - (seg[:, [1, 3]] - y0) * scale
    z = float(model.layer_z[n])
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="layer" width="{SIZE_PX}" '
        f'height="{SIZE_PX}" viewBox="0 0 {SIZE_PX} {SIZE_PX}" data-layer="{n}" '
        f'data-z="{z:.2f}" data-moves="{len(seg)}">'
        f'<rect width="{SIZE_PX}" height="{SIZE_PX}" class="bed"/>'
    )
    travel = _path(px[~work], py[~work])
    working = _path(px[work], py[work])
    return (
        head
        + f'<path class="travel" d="{travel}" fill="none"/>'
        + f'<path class="work" d="{working}" fill="none"/>'
        + f'<text x="6" y="16" class="layer-label">layer {n + 1}/{model.layers} · '
        f"Z {z:.2f} mm</text></svg>"
    )


def _path(px: NDArray[np.float64], py: NDArray[np.float64]) -> str:
    """Path data of segments (k, 2) x and y pairs, joined into polylines where they chain."""
    out: list[str] = []
    last: tuple[float, float] | None = None
    for (ax, bx), (ay, by) in zip(px.round(1).tolist(), py.round(1).tolist(), strict=True):
        if last != (ax, ay):
            out.append(f"M{ax:g} {ay:g}")
        out.append(f"L{bx:g} {by:g}")
        last = (bx, by)
    return "".join(out)


class LayerModels:
    """Parsed files by path, the last ``CACHE_FILES`` kept in memory (a parse takes seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], LayerModel] = OrderedDict()

    def get(self, path: Path, profile: MachineProfile | None) -> LayerModel:
        key = (str(path), profile.id if profile is not None else "")
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = build_model(path, profile)
        with self._lock:
            self._models[key] = model
            while len(self._models) > CACHE_FILES:
                self._models.popitem(last=False)
        return model
