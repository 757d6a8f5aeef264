"""The hub's view of the design library: content-addressed designs registered in the store,
with the estimates matching needs (part size, hours and grams per part)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fabnet.core.designs import Design as CoreDesign
from fabnet.errors import FabnetError, InvalidInput, NotFound
from fabnet.library.design import (
    Design,
    data_library_dir,
    design_facts,
    library_roots,
    library_slugs,
    load_design,
    resolve_design,
)
from fabnet.library.mesh_checks import MeshFacts
from fabnet.profiles import CncMaterial, load_materials
from fabnet.store import Store

log = logging.getLogger(__name__)

# Rough estimating constants, used only to match tasks against makers' limits (max task
# hours) before G-code exists; the ledger always records what the G-code really used.
FDM_SHELL_FILL = 0.45  # share of the part's volume printed solid at 2 walls + 20 % infill
FDM_RATE_MM3_S = 4.0  # effective volumetric rate of a hobby printer, travel included
FDM_OVERHEAD_S = 240.0  # heating, homing, purge
CNC_OVERHEAD_S = 60.0


@dataclass(frozen=True)
class DesignEntry:
    """A library design known to the hub, with its mesh facts."""

    design: Design
    facts: MeshFacts

    @property
    def design_id(self) -> str:
        return self.design.sha256


class DesignCatalog:
    """Designs the hub can make, by content id (sha256) and by slug.

    ``library_dir`` is the hub's own library (uploads go there; look-ups fall back to the
    seeded library behind it); None means the seeded library alone. ``seeded`` also
    registers every seeded design at start, as a hub does (``for_hub``).
    """

    def __init__(
        self, store: Store, library_dir: Path | None = None, *, seeded: bool = False
    ) -> None:
        self._store = store
        self._library_dir = library_dir
        self._seeded = seeded
        self._by_id: dict[str, DesignEntry] = {}
        self._lock = threading.Lock()
        # slug -> why it was skipped at start (a bad design is reported, never fatal)
        self.skipped: dict[str, str] = {}

    @classmethod
    def for_hub(cls, store: Store, data_dir: Path) -> DesignCatalog:
        """A hub's catalog: the seeded library plus ``<data_dir>/designs``."""
        return cls(store, data_library_dir(data_dir), seeded=True)

    @property
    def library_dir(self) -> Path | None:
        """The hub's own library folder (where uploads go), or None."""
        return self._library_dir

    def register_library(self, now: datetime) -> int:
        """Register every library design in the store; returns how many there are.

        A design that cannot be used (broken design.toml, a mesh that is no mesh, a part
        with no size) is logged and kept in ``skipped``, so one bad folder never stops a hub.
        """
        roots = library_roots(self._library_dir) if self._seeded else (self._library_dir,)
        seen: set[str] = set()
        for root in roots:
            for slug in library_slugs(root):
                if slug in seen:
                    continue
                seen.add(slug)
                try:
                    self.register(load_design(slug, root), now)
                except (FabnetError, OSError) as exc:
                    self.skipped[slug] = str(exc)
                    log.warning("design %s skipped: %s", slug, exc)
        return len(self._by_id)

    def register(
        self, design: Design, now: datetime, facts: MeshFacts | None = None
    ) -> DesignEntry:
        """Register ``design`` (its ``facts`` when already measured, as for an upload checked
        in a child process); InvalidInput when the facts make no part (see ``core_design``)."""
        with self._lock:
            if design.sha256 in self._by_id:
                return self._by_id[design.sha256]
        facts = design_facts(design) if facts is None else facts
        entry = DesignEntry(design, facts)
        core = core_design(design, facts)
        try:
            self._store.catalog.get_design(design.sha256)
        except NotFound:
            self._store.catalog.add_design(core, now)
        with self._lock:
            self._by_id[design.sha256] = entry
        return entry

    def resolve(self, ref: str) -> DesignEntry:
        """A design by content id or library slug; NotFound naming the reference otherwise."""
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            for entry in self._by_id.values():
                if entry.design.slug == ref:
                    return entry
        if "/" in ref or ref.endswith((".stl", ".3mf", ".obj")):
            raise InvalidInput(f"design must be a library slug or design id, got {ref!r}")
        return self.register(resolve_design(ref, self._library_dir), datetime.now(UTC))

    def get(self, design_id: str) -> DesignEntry:
        with self._lock:
            entry = self._by_id.get(design_id)
        if entry is None:
            raise NotFound(f"unknown design id {design_id!r}")
        return entry

    def entries(self) -> list[DesignEntry]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda e: e.design.slug)


def core_design(design: Design, facts: MeshFacts) -> CoreDesign:
    """The core's design for a library design; InvalidInput when the facts make no part
    (``bbox_mm must be three sizes > 0`` for a flat mesh)."""
    return CoreDesign(
        design_id=design.sha256,
        name=design.name,
        bbox_mm=facts.size_mm,
        author=design.author,
        license=design.license,
        version=design.version,
        tags=design.tags,
        triangles=facts.triangles,
        volume_mm3=facts.volume_mm3,
        watertight=facts.watertight,
    )


def accept_facts(facts: MeshFacts) -> None:
    """Raise InvalidInput when ``facts`` could not be registered (before a design is stored)."""
    CoreDesign(design_id="0" * 64, name="upload", bbox_mm=facts.size_mm)


def estimate_part(facts: MeshFacts, material_name: str) -> tuple[float, float]:
    """(hours, grams) to make one part in ``material_name``: a rough figure for matching."""
    material = load_materials().get(material_name)
    if isinstance(material, CncMaterial):
        x, y, _ = facts.size_mm
        passes = max(1.0, material.thickness_mm / material.depth_per_pass_mm)
        cut_mm = 2.0 * (x + y) * passes
        seconds = CNC_OVERHEAD_S + 60.0 * cut_mm / material.feed_mm_min
        grams = x * y * material.thickness_mm / 1000.0 * material.density_g_cm3
        return seconds / 3600.0, grams
    solid_mm3 = facts.volume_mm3 * FDM_SHELL_FILL
    seconds = FDM_OVERHEAD_S + solid_mm3 / FDM_RATE_MM3_S
    grams = solid_mm3 / 1000.0 * material.density_g_cm3
    return seconds / 3600.0, grams
