"""The mesh gate of fabnet: load a file, repair what is safe, refuse what is not, say which.

``check_mesh`` reports; ``prepare_mesh`` returns a usable mesh or raises MeshError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trimesh

from fabnet.errors import MeshError
from fabnet.library.mesh_checks import MeshFacts, mesh_facts
from fabnet.library.mesh_io import MESH_SUFFIXES, load_mesh
from fabnet.library.mesh_repair import repair_mesh
from fabnet.library.tolerances import (
    INCH_MM,
    MAX_TRIANGLES,
    METRE_MM,
    PLAUSIBLE_MAX_SIDE_MM,
    PLAUSIBLE_MIN_SIDE_MM,
    SHRINK_FACTORS,
    SLIVER_VOLUME_MM3,
)
from fabnet.profiles.model import MachineProfile

log = logging.getLogger(__name__)

__all__ = [
    "MESH_SUFFIXES",
    "MeshFacts",
    "MeshReport",
    "PreparedMesh",
    "Problem",
    "check_mesh",
    "load_mesh",
    "mesh_facts",
    "prepare_mesh",
]


@dataclass(frozen=True)
class Problem:
    """One reason a mesh is refused: a short ``reason`` code and a message for people."""

    reason: str
    message: str


@dataclass(frozen=True)
class MeshReport:
    """Everything ``check_mesh`` found: facts before and after repair, notes, problems."""

    facts: MeshFacts
    repaired: MeshFacts
    notes: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "facts": self.facts.to_dict(),
            "repaired": self.repaired.to_dict(),
            "notes": list(self.notes),
            "problems": [{"reason": p.reason, "message": p.message} for p in self.problems],
        }

    def error(self) -> MeshError:
        """The MeshError for the first problem; its message lists every problem."""
        if not self.problems:
            raise ValueError("a report without problems has no error")
        return MeshError(
            "; ".join(p.message for p in self.problems),
            reason=self.problems[0].reason,
            open_edges=self.repaired.open_edges,
            nonmanifold_edges=self.repaired.nonmanifold_edges,
            size_mm=self.repaired.size_mm,
        )


@dataclass(frozen=True)
class PreparedMesh:
    """A mesh fit to slice: repaired copy, its facts, and what was done to it."""

    mesh: trimesh.Trimesh
    facts: MeshFacts
    notes: tuple[str, ...]


def _as_mesh(mesh: trimesh.Trimesh | Path | str, max_triangles: int) -> trimesh.Trimesh:
    return mesh if isinstance(mesh, trimesh.Trimesh) else load_mesh(Path(mesh), max_triangles)


def _run(
    mesh: trimesh.Trimesh, profile: MachineProfile | None, max_triangles: int
) -> tuple[MeshReport, trimesh.Trimesh]:
    facts = mesh_facts(mesh)
    if facts.triangles == 0:
        problem = Problem("empty", "the mesh has no triangles")
        return MeshReport(facts, facts, (), (problem,)), mesh
    if facts.triangles > max_triangles:
        problem = Problem(
            "too_many_triangles",
            f"too many triangles: {facts.triangles}, the limit is {max_triangles}",
        )
        return MeshReport(facts, facts, (), (problem,)), mesh
    repaired_mesh, notes = repair_mesh(mesh)
    repaired = mesh_facts(repaired_mesh)
    problems = [
        *_shape_problems(repaired),
        *_units_problems(repaired),
        *_closure_problems(repaired),
        *_fit_problems(repaired, profile),
    ]
    report = MeshReport(facts, repaired, tuple(notes), tuple(problems))
    return report, repaired_mesh


def check_mesh(
    mesh: trimesh.Trimesh | Path | str,
    profile: MachineProfile | None = None,
    max_triangles: int = MAX_TRIANGLES,
) -> MeshReport:
    """Check (and trial-repair) a mesh or mesh file; problems are reported, not raised.

    Raises MeshError only when a file cannot be read as a mesh (``not_a_mesh``, ``empty``).
    """
    report, _ = _run(_as_mesh(mesh, max_triangles), profile, max_triangles)
    return report


def prepare_mesh(
    mesh: trimesh.Trimesh | Path | str,
    profile: MachineProfile | None = None,
    max_triangles: int = MAX_TRIANGLES,
) -> PreparedMesh:
    """A repaired copy of ``mesh`` (mm) ready to slice, or MeshError naming every problem.

    ``MeshError.reason`` is the first of: ``not_a_mesh``, ``empty``, ``too_many_triangles``,
    ``wrong_units``, ``not_watertight``, ``inside_out``, ``does_not_fit``. The input is not
    modified. ``notes`` say what was repaired.
    """
    report, repaired = _run(_as_mesh(mesh, max_triangles), profile, max_triangles)
    if report.problems:
        raise report.error()
    for note in report.notes:
        log.info("mesh repair: %s", note)
    return PreparedMesh(mesh=repaired, facts=report.repaired, notes=report.notes)


def _fmt(size: tuple[float, ...]) -> str:
    return " x ".join(f"{value:.1f}" for value in size)


def _shape_problems(facts: MeshFacts) -> list[Problem]:
    """A part must have three sizes and enclose some volume: a flat or hollow-less surface
    (a double-sided square is closed, so watertight) cannot be made and would be refused
    later, when the hub registers the design."""
    if min(facts.size_mm) <= 0.0:
        return [
            Problem(
                "flat",
                f"flat: bbox_mm must be three sizes > 0, got {_fmt(facts.size_mm)} mm",
            )
        ]
    if facts.volume_mm3 < SLIVER_VOLUME_MM3:
        return [Problem("no_volume", f"encloses no volume: {facts.volume_mm3:.3g} mm³ (a surface)")]
    return []


def _units_problems(facts: MeshFacts) -> list[Problem]:
    if min(facts.size_mm) <= 0.0:
        return []
    largest = max(facts.size_mm)
    if largest > PLAUSIBLE_MAX_SIDE_MM:
        factor = next(
            (f for f in SHRINK_FACTORS if largest * f <= PLAUSIBLE_MAX_SIDE_MM), SHRINK_FACTORS[-1]
        )
        unit = {0.1: "0.1 mm", 0.001: "micron"}.get(factor, "small")
        scaled = tuple(v * factor for v in facts.size_mm)
        return [
            Problem(
                "wrong_units",
                f"wrong units? size {_fmt(facts.size_mm)} mm is larger than "
                f"{PLAUSIBLE_MAX_SIDE_MM:.0f} mm; it looks like {unit} units: "
                f"scale by {factor:g} to get {_fmt(scaled)} mm",
            )
        ]
    if largest < PLAUSIBLE_MIN_SIDE_MM:
        factor = INCH_MM if largest * INCH_MM >= PLAUSIBLE_MIN_SIDE_MM else METRE_MM
        unit = "inch" if factor == INCH_MM else "metre"
        scaled = tuple(v * factor for v in facts.size_mm)
        return [
            Problem(
                "wrong_units",
                f"wrong units? size {_fmt(facts.size_mm)} mm is smaller than "
                f"{PLAUSIBLE_MIN_SIDE_MM:g} mm; it looks like {unit} units: "
                f"scale by {factor:g} to get {_fmt(scaled)} mm",
            )
        ]
    return []


def _closure_problems(facts: MeshFacts) -> list[Problem]:
    if facts.open_edges == 0:
        return []
    problems = [
        Problem(
            "not_watertight",
            f"not watertight: {facts.open_edges} open edges, "
            f"{facts.nonmanifold_edges} non-manifold edges (trimesh fill_holes could not close them)",
        )
    ]
    if facts.inside_out:
        problems.append(
            Problem(
                "inside_out",
                f"inside-out: signed volume {facts.signed_volume_mm3:.1f} mm³; "
                "it cannot be inverted safely while it is open",
            )
        )
    return problems


def _fit_problems(facts: MeshFacts, profile: MachineProfile | None) -> list[Problem]:
    if profile is None or profile.volume.fits(facts.size_mm):
        return []
    vol = profile.volume
    return [
        Problem(
            "does_not_fit",
            f"does not fit {profile.id}: part {_fmt(facts.size_mm)} mm, build volume "
            f"{_fmt((vol.x_mm, vol.y_mm, vol.z_mm))} mm (also tried rotated 90° about Z)",
        )
    ]
