"""Designs in the library (``<library>/<slug>/``) and ad-hoc mesh files, content-addressed.

Two kinds of library folder: the seeded one fabnet ships (read-only package data) and a
hub's own (``<data_dir>/designs``), which sits in front of the seeded one for look-ups.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabnet.errors import ConfigError, NotFound
from fabnet.library.design_toml import DESIGN_FILE, SLUG, check_slug, read_record
from fabnet.library.licenses import NOASSERTION, parse_license
from fabnet.library.mesh import MeshFacts, load_mesh, mesh_facts
from fabnet.library.mesh_io import MESH_SUFFIXES
from fabnet.seed import DESIGNS, shipped_dir

USER_LIBRARY = "designs"  # the library folder inside a hub's data folder


@dataclass(frozen=True)
class Design:
    """One design: its metadata, its mesh file and that file's sha256 (the content address).

    ``directory`` is None for an ad-hoc design made from a loose mesh file.
    """

    slug: str
    name: str
    author: str
    license: str
    version: str
    description: str
    tags: tuple[str, ...]
    remix_of: str | None
    source_url: str | None
    mesh_path: Path
    sha256: str
    directory: Path | None = None

    @property
    def ad_hoc(self) -> bool:
        return self.directory is None

    @property
    def non_commercial(self) -> bool:
        """True when this design's own license forbids commercial use."""
        if self.license == NOASSERTION:
            return False
        return parse_license(self.license).non_commercial

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        return {
            "slug": self.slug,
            "name": self.name,
            "author": self.author,
            "license": self.license,
            "non_commercial": self.non_commercial,
            "version": self.version,
            "description": self.description,
            "tags": list(self.tags),
            "remix_of": self.remix_of,
            "source_url": self.source_url,
            "mesh_path": str(self.mesh_path),
            "sha256": self.sha256,
            "ad_hoc": self.ad_hoc,
        }


def library_dir() -> Path:
    """The seeded library: ``$FABNET_DESIGNS_DIR``, or the designs fabnet ships (read-only)."""
    env = os.environ.get("FABNET_DESIGNS_DIR")
    if env:
        return Path(env)
    return shipped_dir(DESIGNS)


def data_library_dir(data_dir: Path) -> Path:
    """A hub's own library, ``<data_dir>/designs``: where its users' designs are added."""
    return data_dir / USER_LIBRARY


def library_roots(directory: Path | None = None) -> tuple[Path, ...]:
    """The folders a slug is looked up in, in order: ``directory`` (a user's library), then
    the seeded library, so that a user's remix can name a seeded parent."""
    seeded = library_dir()
    if directory is None or directory.resolve() == seeded.resolve():
        return (seeded,)
    return (directory, seeded)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_slugs(directory: Path | None = None) -> list[str]:
    """The slugs of the one library folder ``directory`` (default: the seeded library), sorted;
    folders whose names are no slug (``.staging`` of uploads in progress) are not designs."""
    root = directory or library_dir()
    if not root.is_dir():
        return []
    names = (p.parent.name for p in root.glob(f"*/{DESIGN_FILE}"))
    return sorted(name for name in names if SLUG.fullmatch(name))


def list_designs(directory: Path | None = None) -> list[Design]:
    """Every design in the one library folder ``directory`` (default: the seeded library),
    sorted by slug; ConfigError for a broken one."""
    root = directory or library_dir()
    return [load_design(slug, root) for slug in library_slugs(root)]


def list_library(directory: Path | None = None) -> list[Design]:
    """Every design of ``library_roots(directory)`` (a user's library and the seeded one),
    sorted by slug; where both hold a slug, the user's library wins."""
    found: dict[str, Design] = {}
    for root in library_roots(directory):
        for design in list_designs(root):
            found.setdefault(design.slug, design)
    return [found[slug] for slug in sorted(found)]


def find_folder(slug: str, directory: Path | None = None) -> Path | None:
    """The folder of design ``slug`` in the first of ``library_roots(directory)`` holding it."""
    for root in library_roots(directory):
        if (root / slug / DESIGN_FILE).is_file():
            return root / slug
    return None


def load_design(slug: str, directory: Path | None = None) -> Design:
    """The design ``slug`` of ``library_roots(directory)``; NotFound when absent, ConfigError
    when its files are bad."""
    if not SLUG.fullmatch(slug):
        raise NotFound(f"no design {slug!r}: slugs are lower-case-hyphenated")
    folder = find_folder(slug, directory)
    if folder is None:
        roots = library_roots(directory)
        known = sorted({p.parent.name for r in roots for p in r.glob(f"*/{DESIGN_FILE}")})
        where = " or ".join(str(r) for r in roots)
        raise NotFound(f"no design {slug!r} in {where} (known: {', '.join(known) or 'none'})")
    toml_path = folder / DESIGN_FILE
    record = read_record(toml_path)
    mesh_path = folder / record.mesh
    if not mesh_path.is_file():
        raise ConfigError(f"{toml_path}: key 'mesh' names {record.mesh!r}, which does not exist")
    if record.remix_of == slug:
        raise ConfigError(f"{toml_path}: key 'remix_of' names the design itself")
    return Design(
        slug=slug,
        name=record.name,
        author=record.author,
        license=record.license,
        version=record.version,
        description=record.description,
        tags=record.tags,
        remix_of=record.remix_of,
        source_url=record.source_url,
        mesh_path=mesh_path,
        sha256=file_sha256(mesh_path),
        directory=folder,
    )


def adhoc_design(path: Path) -> Design:
    """A Design for a loose mesh file: license NOASSERTION, author unknown."""
    if not path.is_file():
        raise NotFound(f"no such mesh file: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise NotFound(f"{path}: not a mesh file (expected {', '.join(MESH_SUFFIXES)})")
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "mesh"
    return Design(
        slug=check_slug(slug[:80].strip("-")),
        name=path.stem,
        author="unknown",
        license=NOASSERTION,
        version="0",
        description=f"ad-hoc file {path}",
        tags=(),
        remix_of=None,
        source_url=None,
        mesh_path=path.resolve(),
        sha256=file_sha256(path),
    )


def resolve_design(arg: str, directory: Path | None = None) -> Design:
    """A library slug or a path to an STL/3MF/OBJ file, as a Design; NotFound otherwise."""
    path = Path(arg)
    looks_like_path = path.suffix.lower() in MESH_SUFFIXES or os.sep in arg or "/" in arg
    if looks_like_path or (path.is_file() and not SLUG.fullmatch(arg)):
        return adhoc_design(path)
    return load_design(arg, directory)


def design_facts(design: Design) -> MeshFacts:
    """Mesh facts of ``design`` (raw file, mm), cached per content address; MeshError for a
    file that is not a usable mesh (over the triangle limit, say)."""
    return _facts_cached(design.mesh_path, design.sha256)


@functools.lru_cache(maxsize=128)
def _facts_cached(path: Path, sha256: str) -> MeshFacts:
    return mesh_facts(load_mesh(path))
