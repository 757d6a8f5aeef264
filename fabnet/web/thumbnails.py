"""Design thumbnails: the mesh drawn as SVG from an isometric view, shaded by facing, painter's
order (far triangles first), decimated by vertex clustering; cached on disk by mesh sha256."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fabnet.library.design import Design
from fabnet.library.mesh import load_mesh

log = logging.getLogger(__name__)

MAX_POLYGONS = 2500  # visible triangles drawn; a thumbnail stays under ~150 kB
START_GRID = 160  # clustering cells along the longest side, halved until the count fits
MIN_GRID = 12
SIZE_PX = 240
MARGIN_PX = 8
BASE_RGB = np.array([70.0, 130.0, 200.0])
LIGHT = np.array([-0.4, 0.5, 0.77])  # view-space light direction (normalised below)
AMBIENT = 0.35
CACHE_VERSION = "v1"  # part of the cache file name: change it when the drawing changes


def _view_matrix() -> NDArray[np.float64]:
    """Rows: screen right, screen up, depth towards the viewer, for a viewer at front-right-above
    (+X, -Y, +Z) looking at the part: the usual isometric view of a printed part."""
    towards_viewer = np.array([1.0, -1.0, 1.0]) / math.sqrt(3.0)
    forward = -towards_viewer
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.array([right, up, towards_viewer])


def cluster_decimate(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], grid: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vertex clustering: snap vertices (n, 3) to a ``grid``-cell lattice over the bounding box,
    merge each cell's vertices at their mean, drop triangles (m, 3) that collapsed or repeat."""
    v = np.asanyarray(vertices, dtype=np.float64)
    f = np.asanyarray(faces, dtype=np.int64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    cell = float(np.max(hi - lo)) / grid or 1.0
    idx = np.floor((v - lo) / cell).astype(np.int64)
    keys = (idx[:, 0] * (grid + 1) + idx[:, 1]) * (grid + 1) + idx[:, 2]
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.zeros((len(uniq), 3))
    np.add.at(sums, inverse, v)
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    new_v = sums / counts[:, None]
    new_f = inverse[f]
    keep = (
        (new_f[:, 0] != new_f[:, 1]) & (new_f[:, 1] != new_f[:, 2]) & (new_f[:, 0] != new_f[:, 2])
    )
    new_f = new_f[keep]
    if len(new_f):
        _, first = np.unique(np.sort(new_f, axis=1), axis=0, return_index=True)
        new_f = new_f[np.sort(first)]
    return new_v, new_f


def _visible(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], view: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(projected triangles (k, 3, 3), unit view-space normals (k, 3), area weights) facing us.

    Back faces are dropped; inside-out meshes (no front faces) are drawn with flipped normals."""
    tri = (vertices @ view.T)[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1)
    ok = length > 0
    tri, normals, length = tri[ok], normals[ok], length[ok]
    normals = normals / length[:, None]
    front = normals[:, 2] > 0
    if not front.any():
        normals, front = -normals, normals[:, 2] < 0
    return tri[front], normals[front], length[front]


def render_svg(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> str:
    """An isometric, shaded SVG of the mesh ``vertices`` (n, 3) mm, ``faces`` (m, 3)."""
    view = _view_matrix()
    v = np.asanyarray(vertices, dtype=np.float64)
    f = np.asanyarray(faces, dtype=np.int64)
    grid = START_GRID
    tri, normals, _ = _visible(v, f, view)
    while len(tri) > MAX_POLYGONS and grid >= MIN_GRID:
        dv, df = cluster_decimate(v, f, grid)
        tri, normals, _ = _visible(dv, df, view)
        grid //= 2
    if len(tri) > MAX_POLYGONS:  # pathological meshes: keep the largest triangles
        tri, normals = tri[:MAX_POLYGONS], normals[:MAX_POLYGONS]
    return _draw(tri, normals)


def _draw(tri: NDArray[np.float64], normals: NDArray[np.float64]) -> str:
    open_tag = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="thumb" width="{SIZE_PX}" '
        f'height="{SIZE_PX}" viewBox="0 0 {SIZE_PX} {SIZE_PX}">'
    )
    if len(tri) == 0:
        return open_tag + "</svg>"
    order = np.argsort(tri[:, :, 2].mean(axis=1))  # far (small depth) first
    tri, normals = tri[order], normals[order]
    xy = tri[:, :, :2].reshape(-1, 2)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float(np.max(hi - lo)) or 1.0
    scale = (SIZE_PX - 2 * MARGIN_PX) / span
    offset = (SIZE_PX - (hi - lo) * scale) / 2
    px = (tri[:, :, 0] - lo[0]) * scale + offset[0]
    py = SIZE_PX - ((tri[:, :, 1] - lo[1]) * scale + offset[1])
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = AMBIENT + (1 - AMBIENT) * np.clip(normals @ light, 0.0, 1.0)
    rgb = np.clip(BASE_RGB[None, :] * shade[:, None] + 40 * shade[:, None], 0, 255).astype(int)
    out = [open_tag]
    for i in range(len(tri)):
        r, g, b = rgb[i]
        colour = f"#{r:02x}{g:02x}{b:02x}"
        out.append(
            f'<path d="M{px[i, 0]:.1f} {py[i, 0]:.1f}L{px[i, 1]:.1f} {py[i, 1]:.1f}'
            f'L{px[i, 2]:.1f} {py[i, 2]:.1f}Z" fill="{colour}" stroke="{colour}"/>'
        )
    out.append("</svg>")
    return "".join(out)


class Thumbnails:
    """Thumbnail SVGs of designs, rendered once per mesh sha256 and kept under ``cache_dir``.

    Thread-safe: concurrent first requests for one design wait for a single render (one lock
    per key), and each write goes to its own temporary file, renamed into place atomically.
    """

    def __init__(self, cache_dir: Path) -> None:
        self._dir = cache_dir
        self._lock = threading.Lock()
        self._memory: dict[str, str] = {}
        self._rendering: dict[str, threading.Lock] = {}
        self.renders = 0  # meshes rendered by this instance (for tests and logs)

    def svg(self, design: Design) -> str:
        """The design's thumbnail; renders (seconds for 225k triangles) only on a cache miss.

        Raises NotFound / MeshError from loading the mesh."""
        key = f"{design.sha256}-{CACHE_VERSION}"
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            key_lock = self._rendering.setdefault(key, threading.Lock())
        with key_lock:  # single flight: the first caller renders, the others wait for it
            with self._lock:
                if key in self._memory:
                    return self._memory[key]
            text = self._load_or_render(design, self._dir / f"{key}.svg")
            with self._lock:
                self._memory[key] = text
                self._rendering.pop(key, None)
        return text

    def _load_or_render(self, design: Design, path: Path) -> str:
        if path.exists():
            return path.read_text(encoding="utf-8")
        mesh = load_mesh(design.mesh_path)
        text = render_svg(np.asarray(mesh.vertices), np.asarray(mesh.faces))
        self.renders += 1
        self._dir.mkdir(parents=True, exist_ok=True)
        # a name of its own per write: other hub processes may share the cache folder
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            dir=self._dir,
            prefix=f".{path.stem}-",
            suffix=".tmp",
            delete=False,
        ) as tmp:
            tmp.write(text)
        try:
            os.replace(tmp.name, path)
        except OSError:
            Path(tmp.name).unlink(missing_ok=True)
            raise
        log.info("thumbnail of %s: %d bytes", design.slug, len(text))
        return text
