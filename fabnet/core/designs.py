"""A design as the core knows it: content id, provenance, license and mesh facts."""

from __future__ import annotations

from dataclasses import dataclass

from fabnet.errors import InvalidInput


@dataclass(frozen=True)
class Design:
    """A design; ``design_id`` is the sha256 (hex) of its mesh file.

    ``bbox_mm`` is the bounding box size (x, y, z) in mm, ``volume_mm3`` the mesh volume,
    ``remix_of`` the parent design's id (lineage), ``license`` an SPDX identifier.
    """

    design_id: str
    name: str
    bbox_mm: tuple[float, float, float]
    author: str = ""
    license: str = ""
    version: str = "1"
    remix_of: str | None = None
    tags: tuple[str, ...] = ()
    triangles: int = 0
    volume_mm3: float = 0.0
    watertight: bool = True

    def __post_init__(self) -> None:
        if len(self.design_id) != 64 or any(c not in "0123456789abcdef" for c in self.design_id):
            raise InvalidInput(f"design_id must be a sha256 hex digest, got {self.design_id!r}")
        if len(self.bbox_mm) != 3 or any(not v > 0 for v in self.bbox_mm):
            raise InvalidInput(f"bbox_mm must be three sizes > 0, got {self.bbox_mm!r}")
