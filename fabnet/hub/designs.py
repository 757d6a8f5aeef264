"""The hub's view of the design library: content-addressed designs registered in the store,
with the estimates matching needs (part size, hours and grams per part)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError

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
from fabnet.library.design_toml import DESIGN_FILE
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
DESIGN_ID_CHARS = 64  # a design id is its mesh's sha256
HEX_DIGITS = frozenset("0123456789abcdef")


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

    Several hub processes share one database and one library folder (issue 9): a design
    uploaded through one process is written to the folder and registered in the store, and
    the others find it when first asked — an id the store knows but this catalog does not
    sends it to read the library folders it has not read yet, and keeps what it finds.
    """

    def __init__(
        self, store: Store, library_dir: Path | None = None, *, seeded: bool = False
    ) -> None:
        self._store = store
        self._library_dir = library_dir
        self._seeded = seeded
        self._by_id: dict[str, DesignEntry] = {}
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # one library scan at a time (see ``_scan``)
        self._read_folders: set[Path] = set()  # design folders registered
        self._bad_folders: dict[Path, int] = {}  # folder -> its design.toml's mtime (ns)
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
            try:
                self._store.catalog.add_design(core, now)
            except IntegrityError:  # another hub process added it a moment before us
                self._store.catalog.get_design(design.sha256)
        with self._lock:
            self._by_id[design.sha256] = entry
            if design.directory is not None:
                self._read_folders.add(design.directory)
        return entry

    def resolve(self, ref: str) -> DesignEntry:
        """A design by content id or library slug; NotFound naming the reference otherwise."""
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            for entry in self._by_id.values():
                if entry.design.slug == ref:
                    return entry
        if is_design_id(ref):
            return self.get(ref)
        if "/" in ref or ref.endswith((".stl", ".3mf", ".obj")):
            raise InvalidInput(f"design must be a library slug or design id, got {ref!r}")
        return self.register(resolve_design(ref, self._library_dir), datetime.now(UTC))

    def get(self, design_id: str) -> DesignEntry:
        """The design ``design_id``: from memory, else — when the store knows it, as when
        another hub process registered an upload — from the library folders. NotFound when
        the store does not know it, or its files are in none of this process's folders."""
        with self._lock:
            entry = self._by_id.get(design_id)
        if entry is not None:
            return entry
        try:
            self._store.catalog.get_design(design_id)
        except NotFound:
            raise NotFound(f"unknown design id {design_id!r}") from None
        self._scan()
        with self._lock:
            entry = self._by_id.get(design_id)
        if entry is None:
            where = " or ".join(str(r) for r in self._roots())
            raise NotFound(
                f"design {design_id} is registered but its files are not in {where}: every hub"
                " process must share the library folder (<data_dir>/designs)"
            )
        return entry

    def entries(self) -> list[DesignEntry]:
        """Every design known, those other hub processes registered since included (one read
        of the store's design ids; the folders are read only when it names an unknown one)."""
        with self._lock:
            known = set(self._by_id)
        if any(d.design_id not in known for d in self._store.catalog.list_designs()):
            self._scan()
        with self._lock:
            return sorted(self._by_id.values(), key=lambda e: e.design.slug)

    def _roots(self) -> tuple[Path, ...]:
        if self._seeded:
            return library_roots(self._library_dir)
        return (self._library_dir,) if self._library_dir is not None else library_roots(None)

    def _scan(self) -> None:
        """Register the designs of the library folders not read before. A folder that is no
        usable design is logged once and read again only after its design.toml changes."""
        with self._scan_lock:
            for root in self._roots():
                for slug in library_slugs(root):
                    folder = root / slug
                    with self._lock:
                        if folder in self._read_folders:
                            continue
                    try:
                        stamp = (folder / DESIGN_FILE).stat().st_mtime_ns
                    except OSError:
                        continue  # removed since it was listed
                    if self._bad_folders.get(folder) == stamp:
                        continue
                    try:
                        self.register(load_design(slug, root), datetime.now(UTC))
                    except (FabnetError, OSError) as exc:
                        self._bad_folders[folder] = stamp
                        log.warning("library folder %s skipped: %s", folder, exc)


def is_design_id(ref: str) -> bool:
    """True if ``ref`` has the form of a design id (a sha256: 64 lowercase hex digits)."""
    return len(ref) == DESIGN_ID_CHARS and set(ref) <= HEX_DIGITS


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
