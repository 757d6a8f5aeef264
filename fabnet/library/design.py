"""Designs in the library (``designs/<slug>/``) and ad-hoc mesh files, content-addressed."""

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
    """The library root: ``$FABNET_DESIGNS_DIR`` or the repository's ``designs/``."""
    env = os.environ.get("FABNET_DESIGNS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "designs"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_designs(directory: Path | None = None) -> list[Design]:
    """Every design in the library, sorted by slug; ConfigError for a broken one."""
    root = directory or library_dir()
    if not root.is_dir():
        return []
    slugs = sorted(p.parent.name for p in root.glob(f"*/{DESIGN_FILE}"))
    return [load_design(slug, root) for slug in slugs]


def load_design(slug: str, directory: Path | None = None) -> Design:
    """The library design ``slug``; NotFound when absent, ConfigError when its files are bad."""
    root = directory or library_dir()
    if not SLUG.match(slug):
        raise NotFound(f"no design {slug!r}: slugs are lower-case-hyphenated")
    folder = root / slug
    toml_path = folder / DESIGN_FILE
    if not toml_path.is_file():
        known = ", ".join(p.parent.name for p in sorted(root.glob(f"*/{DESIGN_FILE}")))
        raise NotFound(f"no design {slug!r} in {root} (known: {known or 'none'})")
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
    if looks_like_path or (path.is_file() and not SLUG.match(arg)):
        return adhoc_design(path)
    return load_design(arg, directory)


def design_facts(design: Design) -> MeshFacts:
    """Mesh facts of ``design`` (raw file, mm), cached per content address."""
    return _facts_cached(design.mesh_path, design.sha256)


@functools.lru_cache(maxsize=128)
def _facts_cached(path: Path, sha256: str) -> MeshFacts:
    return mesh_facts(load_mesh(path))
