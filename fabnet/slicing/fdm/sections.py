"""Cut a triangle mesh by many horizontal planes at once: segments, closed rings, solid polygons.

All layers are sectioned in one vectorised pass; a section point is named by the mesh edge it
lies on, so rings are chained by integer ids rather than by comparing float coordinates.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
import trimesh
from numpy.typing import NDArray

log = logging.getLogger(__name__)

SIMPLIFY_MM = 0.01  # ring vertices closer to a straight line than this are dropped
MIN_RING_AREA_MM2 = 0.01  # rings smaller than this are noise (slivers, degenerate faces)


def layer_heights(height_mm: float, layer_mm: float) -> NDArray[np.float64]:
    """Section heights (mm) for each layer: the middle of the layer, shape (n_layers,)."""
    n_layers = max(1, round(height_mm / layer_mm))
    return (np.arange(n_layers, dtype=np.float64) + 0.5) * layer_mm


def _segments(
    mesh: trimesh.Trimesh, heights: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Every (layer, triangle) crossing: layer index, start/end edge id and start point (m, 2).

    Segments are oriented so that the solid lies on their left (outer rings counter-clockwise).
    """
    vertices = np.asanyarray(mesh.vertices, dtype=np.float64)
    faces = np.asanyarray(mesh.faces, dtype=np.int64)
    face_edges = np.asanyarray(mesh.faces_unique_edges, dtype=np.int64)  # edge i joins v_i, v_i+1
    z = vertices[:, 2][faces]
    lo = np.searchsorted(heights, z.min(axis=1), side="right")
    hi = np.searchsorted(heights, z.max(axis=1), side="right")
    count = hi - lo
    face_idx = np.repeat(np.arange(len(faces)), count)
    starts = np.repeat(lo - np.cumsum(count) + count, count)
    layer = (np.arange(len(face_idx)) + starts).astype(np.int64)
    plane = heights[layer]

    above = z[face_idx] >= plane[:, None]  # (m, 3); a vertex on the plane counts as above
    # The lone vertex is the one on the other side from the two others.
    n_above = above.sum(axis=1)
    lone = np.where(n_above == 1, np.argmax(above, axis=1), np.argmax(~above, axis=1))
    prev_v = (lone + 2) % 3
    # Edges touching the lone vertex: edge (prev, lone) and edge (lone, next).
    edge_in = face_edges[face_idx, prev_v]
    edge_out = face_edges[face_idx, lone]
    tri = faces[face_idx]
    rows = np.arange(len(face_idx))
    v_lone = tri[rows, lone]
    p_in = _edge_point(vertices, v_lone, tri[rows, prev_v], plane)
    p_out = _edge_point(vertices, v_lone, tri[rows, (lone + 1) % 3], plane)

    # For a face wound counter-clockwise seen from outside, running from the edge into the
    # lone vertex to the edge out of it keeps the solid on the left exactly when that vertex
    # is below the plane; this needs no face normal, so degenerate faces orient correctly.
    forward = n_above != 1
    start_edge = np.where(forward, edge_in, edge_out)
    end_edge = np.where(forward, edge_out, edge_in)
    start_pt = np.where(forward[:, None], p_in, p_out)
    return layer, start_edge, end_edge, start_pt


def _edge_point(
    vertices: NDArray[np.float64],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    plane: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Where edge a-b meets z = plane, computed from the lower end so both faces agree bitwise."""
    swap = vertices[a, 2] > vertices[b, 2]
    low = np.where(swap, b, a)
    high = np.where(swap, a, b)
    p0 = vertices[low]
    p1 = vertices[high]
    dz = p1[:, 2] - p0[:, 2]
    t = np.divide(plane - p0[:, 2], dz, out=np.zeros_like(dz), where=dz != 0)
    return p0[:, :2] + t[:, None] * (p1[:, :2] - p0[:, :2])


def _chain(
    layer: NDArray[np.int64],
    start_edge: NDArray[np.int64],
    end_edge: NDArray[np.int64],
    n_edges: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Order segments into closed rings: (segment order, ring id per ordered segment)."""
    m = len(layer)
    key_start = layer * n_edges + start_edge
    key_end = layer * n_edges + end_edge
    by_start = np.argsort(key_start, kind="stable")
    by_end = np.argsort(key_end, kind="stable")
    sorted_start = key_start[by_start]
    sorted_end = key_end[by_end]
    # Where non-manifold edges make several rings touch one point, the k-th segment ending
    # there continues with the k-th segment starting there.
    rank = np.arange(m) - np.searchsorted(sorted_end, sorted_end)
    pos = np.searchsorted(sorted_start, sorted_end) + rank
    pos_ok = np.minimum(pos, max(m - 1, 0))
    found = (pos < m) & (sorted_start[pos_ok] == sorted_end)
    nxt_arr = np.full(m, -1, dtype=np.int64)
    nxt_arr[by_end[found]] = by_start[pos_ok[found]]
    nxt = nxt_arr.tolist()

    visited = bytearray(m)
    order: list[int] = []
    ring_ids: list[int] = []
    ring = 0
    open_chains = 0
    for first in range(m):
        if visited[first]:
            continue
        chain = [first]
        visited[first] = 1
        current = nxt[first]
        while current >= 0 and not visited[current]:
            visited[current] = 1
            chain.append(current)
            current = nxt[current]
        if current != first or len(chain) < 3:
            open_chains += 1
            continue
        order.extend(chain)
        ring_ids.extend([ring] * len(chain))
        ring += 1
    if open_chains:
        log.debug("dropped %d open section chains (non-manifold or open mesh)", open_chains)
    return np.asarray(order, dtype=np.int64), np.asarray(ring_ids, dtype=np.int64)


def _solid(rings: NDArray[np.object_], signed: NDArray[np.float64]) -> shapely.Geometry:
    """The solid of one layer's rings by the non-zero winding rule (overlapping bodies unite)."""
    order = np.argsort(-np.abs(signed))
    rings, signed = rings[order], signed[order]
    polys = shapely.polygons(rings)
    broken = ~shapely.is_valid(polys)  # a self-touching ring from a defective mesh
    if broken.any():
        polys[broken] = shapely.make_valid(polys[broken])
    area = np.abs(signed)
    tree = shapely.STRtree(polys)
    probe = shapely.get_point(rings, 0)
    pt_idx, poly_idx = tree.query(probe, predicate="within")
    parent = np.full(len(polys), -1, dtype=np.int64)
    best = np.full(len(polys), np.inf)
    for p, q in zip(pt_idx.tolist(), poly_idx.tolist(), strict=True):
        if p != q and area[q] >= area[p] and area[q] < best[p]:
            best[p], parent[p] = area[q], q
    winding = np.zeros(len(polys), dtype=np.int64)
    children: list[list[int]] = [[] for _ in range(len(polys))]
    for i in range(len(polys)):  # descending area: parents come first
        own = 1 if signed[i] > 0 else -1
        winding[i] = own + (winding[parent[i]] if parent[i] >= 0 else 0)
        if parent[i] >= 0:
            children[parent[i]].append(i)
    faces = []
    for i in np.flatnonzero(winding > 0).tolist():
        face = polys[i]
        if children[i]:
            face = shapely.difference(face, shapely.union_all(polys[children[i]]))
        faces.append(face)
    return shapely.union_all(faces) if faces else shapely.Polygon()


def section_layers(mesh: trimesh.Trimesh, heights: NDArray[np.float64]) -> list[shapely.Geometry]:
    """The solid cross-section at each height: one (Multi)Polygon per layer, in mesh XY (mm).

    Open chains (from non-manifold edges or holes) are dropped; an empty layer is an empty
    Polygon. Overlapping bodies are united.
    """
    layer, start_edge, end_edge, start_pt = _segments(mesh, heights)
    order, ring_of = _chain(layer, start_edge, end_edge, len(mesh.edges_unique))
    result: list[shapely.Geometry] = [shapely.Polygon() for _ in heights]
    if len(order) == 0:
        return result
    coords = start_pt[order]
    rings = shapely.linearrings(coords, indices=ring_of)
    first = np.searchsorted(ring_of, np.arange(ring_of[-1] + 1))
    ring_layer = layer[order][first]
    # Douglas-Peucker without topology checks is fast; a ring it breaks is kept as it was.
    simple = shapely.simplify(rings, SIMPLIFY_MM, preserve_topology=False)
    broken = shapely.is_empty(simple) | ~shapely.is_valid(simple)
    rings = np.where(broken, rings, simple)
    signed = _signed_areas(coords, ring_of, ring_of[-1] + 1)
    keep = np.abs(signed) >= MIN_RING_AREA_MM2
    by_layer = np.flatnonzero(keep)[np.argsort(ring_layer[keep], kind="stable")]
    rings, signed, ring_layer = rings[by_layer], signed[by_layer], ring_layer[by_layer]
    bounds = np.searchsorted(ring_layer, np.arange(len(heights) + 1))
    for i in range(len(heights)):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            solid = _solid(rings[a:b], signed[a:b])
            result[i] = solid if shapely.is_valid(solid) else _polygonal(shapely.make_valid(solid))
    return result


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """Only the areas of a repaired geometry (make_valid may add stray lines and points)."""
    parts = shapely.get_parts(geometry)
    return shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])


def _signed_areas(
    coords: NDArray[np.float64], ring_of: NDArray[np.int64], n_rings: int
) -> NDArray[np.float64]:
    """Shoelace signed area (mm², positive = counter-clockwise) of each ring, vectorised."""
    first = np.searchsorted(ring_of, np.arange(n_rings))
    nxt = np.arange(1, len(coords) + 1)
    last = np.append(first[1:], len(coords)) - 1
    nxt[last] = first
    cross = coords[:, 0] * coords[nxt, 1] - coords[nxt, 0] * coords[:, 1]
    return np.asarray(
        0.5 * np.bincount(ring_of, weights=cross, minlength=n_rings), dtype=np.float64
    )
