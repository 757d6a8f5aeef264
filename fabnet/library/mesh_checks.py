"""Measured facts of a mesh (size, volume, edges, bodies), vectorised over (m, 3) face arrays."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import trimesh
from numpy.typing import NDArray
from trimesh import graph, grouping

from fabnet.library.tolerances import MERGE_DIGITS

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class MeshFacts:
    """What a mesh is, in mm: measured after merging coincident vertices (the file is untouched).

    ``volume_mm3`` is the absolute enclosed volume; ``signed_volume_mm3`` is negative for an
    inside-out mesh. ``open_edges`` are edges used by one triangle, ``nonmanifold_edges`` by
    more than two. ``watertight`` means neither kind exists. ``bodies`` counts the pieces
    connected through edges shared by exactly two triangles.
    """

    triangles: int
    vertices: int
    bbox_min_mm: Vec3
    bbox_max_mm: Vec3
    size_mm: Vec3
    volume_mm3: float
    signed_volume_mm3: float
    watertight: bool
    winding_consistent: bool
    bodies: int
    open_edges: int
    nonmanifold_edges: int

    @property
    def inside_out(self) -> bool:
        """True when the surface's normals point inwards overall (negative signed volume)."""
        return self.signed_volume_mm3 < 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``inside_out``."""
        data = asdict(self)
        data["inside_out"] = self.inside_out
        return data


@dataclass(frozen=True)
class EdgeCounts:
    """Edge use of a face array: open (1 face), non-manifold (>2), and winding consistency."""

    open_edges: int
    nonmanifold_edges: int
    winding_consistent: bool


def edge_counts(faces: NDArray[np.int64], vertex_count: int, winding: bool = True) -> EdgeCounts:
    """Count open and non-manifold edges of ``faces`` (m, 3) over merged vertex indices.

    With ``winding=False`` the (costlier) winding check is skipped and reported as True.
    """
    faces = np.asanyarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return EdgeCounts(0, 0, True)
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    n = np.int64(max(vertex_count, 1))
    keys = np.sort(directed.min(axis=1) * n + directed.max(axis=1))
    starts = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    counts = np.diff(starts, append=len(keys))
    consistent = True
    if winding:
        # Two faces that disagree on orientation traverse their shared edge the same way.
        directed_keys = np.sort(directed[:, 0] * n + directed[:, 1])
        repeated = directed_keys[1:][directed_keys[1:] == directed_keys[:-1]]
        # A repeat on a non-manifold edge is not a winding fault of a 2-face edge.
        twice = keys[starts[counts == 2]]
        consistent = not bool(np.isin(_undirected(repeated, n), twice).any())
    return EdgeCounts(
        open_edges=int(np.count_nonzero(counts == 1)),
        nonmanifold_edges=int(np.count_nonzero(counts > 2)),
        winding_consistent=consistent,
    )


def _undirected(keys: NDArray[np.int64], n: np.int64) -> NDArray[np.int64]:
    a, b = keys // n, keys % n
    return np.asarray(np.minimum(a, b) * n + np.maximum(a, b), dtype=np.int64)


def face_signed_volumes(
    vertices: NDArray[np.float64], faces: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Signed volume (mm³) of the tetrahedron each face (m, 3) forms with the origin, (m,)."""
    tri = np.asanyarray(vertices, dtype=np.float64)[np.asanyarray(faces, dtype=np.int64)]
    cross = np.cross(tri[:, 1], tri[:, 2])
    return np.asarray(np.einsum("ij,ij->i", tri[:, 0], cross) / 6.0, dtype=np.float64)


def body_labels(mesh: trimesh.Trimesh) -> NDArray[np.int64]:
    """Body index (m,) of each face, bodies joined by edges shared by exactly two faces."""
    if len(mesh.faces) == 0:
        return np.zeros(0, dtype=np.int64)
    labels = graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    return np.asarray(labels, dtype=np.int64)


def merged_view(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A new mesh sharing no state with ``mesh``: coincident vertices merged, faces kept."""
    vertices = np.asanyarray(mesh.vertices, dtype=np.float64)
    if len(vertices) == 0:
        return trimesh.Trimesh(process=False)
    unique, inverse = grouping.unique_rows(vertices, digits=MERGE_DIGITS)
    faces = np.asarray(inverse, dtype=np.int64)[np.asanyarray(mesh.faces, dtype=np.int64)]
    return trimesh.Trimesh(vertices=vertices[unique], faces=faces, process=False)


def mesh_facts(mesh: trimesh.Trimesh) -> MeshFacts:
    """Measure ``mesh`` (units as given, normally mm); never modifies it."""
    merged = merged_view(mesh)
    faces = np.asanyarray(merged.faces, dtype=np.int64)
    if len(faces) == 0:
        zero = (0.0, 0.0, 0.0)
        return MeshFacts(0, 0, zero, zero, zero, 0.0, 0.0, False, True, 0, 0, 0)
    vertices = np.asanyarray(merged.vertices, dtype=np.float64)
    used = vertices[np.unique(faces)]
    lo, hi = used.min(axis=0), used.max(axis=0)
    edges = edge_counts(faces, len(vertices))
    signed = float(face_signed_volumes(vertices, faces).sum())
    labels = body_labels(merged)
    return MeshFacts(
        triangles=len(mesh.faces),
        vertices=len(vertices),
        bbox_min_mm=_vec(lo),
        bbox_max_mm=_vec(hi),
        size_mm=_vec(hi - lo),
        volume_mm3=abs(signed),
        signed_volume_mm3=signed,
        watertight=edges.open_edges == 0 and edges.nonmanifold_edges == 0,
        winding_consistent=edges.winding_consistent,
        bodies=int(labels.max()) + 1,
        open_edges=edges.open_edges,
        nonmanifold_edges=edges.nonmanifold_edges,
    )


def _vec(values: NDArray[np.float64]) -> Vec3:
    return (float(values[0]), float(values[1]), float(values[2]))
