"""Safe, reported repairs: merge vertices, drop slivers/duplicates/zero-area faces, fix winding,
fill holes, invert inside-out. A repair that would open edges is not made."""

from __future__ import annotations

import logging

import numpy as np
import trimesh
from numpy.typing import NDArray

from fabnet.library.mesh_checks import (
    EdgeCounts,
    body_labels,
    edge_counts,
    face_signed_volumes,
    merged_view,
)
from fabnet.library.tolerances import MAX_FILL_OPEN_EDGES, SLIVER_MAX_FACES, SLIVER_VOLUME_MM3

log = logging.getLogger(__name__)


def repair_mesh(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, list[str]]:
    """A repaired copy of ``mesh`` and one note per change made (or deliberately not made).

    Never raises for a bad mesh: what cannot be repaired is left for the checks to report.
    """
    work = merged_view(mesh)
    notes: list[str] = []
    merged = len(mesh.vertices) - len(work.vertices)
    if merged > 0:
        notes.append(f"merged {merged} duplicate vertices")
    work = _drop_slivers(work, notes)
    work = _guarded_drop(work, work.unique_faces(), "duplicate faces", notes)
    work = _guarded_drop(work, work.nondegenerate_faces(), "zero-area faces", notes)
    work = _fix_winding(work, notes)
    work = _fill_holes(work, notes)
    _fix_inside_out(work, notes)
    edges = _edges(work)
    if edges.nonmanifold_edges:
        notes.append(
            f"{edges.nonmanifold_edges} non-manifold edges left as they are "
            "(the surface is closed; slicers handle them)"
        )
    return work, notes


def _edges(mesh: trimesh.Trimesh, winding: bool = False) -> EdgeCounts:
    faces = np.asanyarray(mesh.faces, dtype=np.int64)
    return edge_counts(faces, len(mesh.vertices), winding=winding)


def _subset(mesh: trimesh.Trimesh, keep: NDArray[np.bool_]) -> trimesh.Trimesh:
    out = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces[keep], process=False)
    out.remove_unreferenced_vertices()
    return out


def _guarded_drop(
    mesh: trimesh.Trimesh, keep: NDArray[np.bool_], what: str, notes: list[str]
) -> trimesh.Trimesh:
    """Drop the faces not in ``keep`` unless that opens edges or leaves nothing."""
    keep = np.asarray(keep, dtype=bool)
    dropped = int(np.count_nonzero(~keep))
    if dropped == 0 or dropped == len(keep):
        return mesh
    before = _edges(mesh)
    trial = _subset(mesh, keep)
    after = _edges(trial)
    if after.open_edges > before.open_edges or after.nonmanifold_edges > before.nonmanifold_edges:
        opened = after.open_edges - before.open_edges
        notes.append(f"kept {dropped} {what}: removing them would open {opened} edges")
        return mesh
    notes.append(f"removed {dropped} {what}")
    return trial


def _drop_slivers(mesh: trimesh.Trimesh, notes: list[str]) -> trimesh.Trimesh:
    """Drop bodies that cannot hold material (< 4 faces or no volume), if others remain."""
    labels = body_labels(mesh)
    if len(labels) == 0:
        return mesh
    faces_per_body = np.bincount(labels)
    volumes = face_signed_volumes(mesh.vertices, mesh.faces)
    body_volume = np.abs(np.bincount(labels, weights=volumes))
    sliver = (faces_per_body <= SLIVER_MAX_FACES) | (body_volume < SLIVER_VOLUME_MM3)
    count = int(np.count_nonzero(sliver))
    if count == 0 or count == len(sliver):
        return mesh
    keep = ~sliver[labels]
    before = _edges(mesh)
    trial = _subset(mesh, keep)
    if _edges(trial).open_edges > before.open_edges:
        return mesh
    notes.append(
        f"dropped {count} sliver bodies ({int(np.count_nonzero(~keep))} triangles, no volume)"
    )
    return trial


def _fix_winding(mesh: trimesh.Trimesh, notes: list[str]) -> trimesh.Trimesh:
    if _edges(mesh, winding=True).winding_consistent:
        return mesh
    before = mesh.faces.copy()
    trimesh.repair.fix_winding(mesh)
    flipped = int(np.count_nonzero(np.any(before != mesh.faces, axis=1)))
    if _edges(mesh, winding=True).winding_consistent:
        notes.append(f"made winding consistent ({flipped} faces flipped)")
    else:
        notes.append(f"winding is inconsistent and could not be fixed ({flipped} faces flipped)")
    return mesh


def _fill_holes(mesh: trimesh.Trimesh, notes: list[str]) -> trimesh.Trimesh:
    """Close holes with trimesh's ``fill_holes`` when that makes the mesh closed."""
    opened = _edges(mesh).open_edges
    if opened == 0:
        return mesh
    if opened > MAX_FILL_OPEN_EDGES:
        # trimesh's fill_holes walks every open loop in Python: a triangle soup would take
        # minutes and gigabytes, and holes that large are no repair anyway.
        notes.append(
            f"did not try to fill holes: {opened} open edges, more than {MAX_FILL_OPEN_EDGES}"
        )
        return mesh
    trial = mesh.copy()
    trial.fill_holes()
    left = _edges(trial).open_edges
    if left == 0:
        added = len(trial.faces) - len(mesh.faces)
        notes.append(f"filled holes: closed {opened} open edges with {added} new triangles")
        return trial
    notes.append(f"tried to fill holes: {left} of {opened} open edges remain")
    log.debug("fill_holes left %d of %d open edges", left, opened)
    return mesh


def _fix_inside_out(mesh: trimesh.Trimesh, notes: list[str]) -> None:
    """Invert a closed mesh whose total signed volume is negative (in place)."""
    if _edges(mesh).open_edges:
        return
    signed = float(face_signed_volumes(mesh.vertices, mesh.faces).sum())
    if signed < 0.0:
        mesh.invert()
        notes.append(f"inverted inside-out mesh (signed volume was {signed:.1f} mm³)")
