"""The slicer seam: every way of turning a mesh into G-code for one profile has this shape.

The built-in FDM slicer, the CNC toolpath generator and the PrusaSlicer / CuraEngine adapters
all implement ``Slicer``; the hub and the CLI choose one by name and never care which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import trimesh

    from fabnet.profiles import CncMaterial, FdmMaterial, MachineProfile


@dataclass(frozen=True)
class SliceSettings:
    """What a requester or maker may choose; everything else comes from profile and material."""

    layer_height_mm: float = 0.2
    infill_percent: float = 20.0
    walls: int = 2
    top_layers: int = 4
    bottom_layers: int = 3
    quantity: int = 1
    skirt_loops: int = 1
    tool_number: int | None = None  # CNC only: the tool table entry; None = profile default
    tabs: int = 4  # CNC only: holding tabs on the outside profile

    def __post_init__(self) -> None:
        from fabnet.errors import InvalidInput

        checks: list[tuple[str, float, float, float]] = [
            ("layer_height_mm", self.layer_height_mm, 0.05, 1.0),
            ("infill_percent", self.infill_percent, 0.0, 100.0),
            ("walls", self.walls, 1, 10),
            ("top_layers", self.top_layers, 0, 20),
            ("bottom_layers", self.bottom_layers, 0, 20),
            ("quantity", self.quantity, 1, 500),
            ("skirt_loops", self.skirt_loops, 0, 10),
            ("tabs", self.tabs, 0, 16),
        ]
        for name, value, lo, hi in checks:
            if not lo <= value <= hi:
                raise InvalidInput(f"{name} must be {lo:g}..{hi:g}, got {value!r}")


@dataclass(frozen=True)
class SliceResult:
    """G-code text and the slicer's own figures (ours are re-derived by ``fabnet.gcode``)."""

    gcode: str
    slicer: str
    notes: tuple[str, ...] = field(default_factory=tuple)


class Slicer(Protocol):
    """Turns a prepared mesh (validated, repaired, in mm) into G-code for one machine."""

    name: str

    def slice(
        self,
        mesh: trimesh.Trimesh,
        profile: MachineProfile,
        material: FdmMaterial | CncMaterial,
        settings: SliceSettings,
    ) -> SliceResult:
        """Raise InvalidInput when the part does not fit, ToolMissing / ToolFailed for externals."""
        ...
