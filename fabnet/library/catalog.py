"""Adding designs and remixes to the library: validate mesh and license, copy, write the toml."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fabnet.errors import Conflict, InvalidInput, MeshError
from fabnet.library.design import Design, find_folder, load_design
from fabnet.library.design_toml import (
    DESIGN_FILE,
    DesignRecord,
    check_slug,
    render_record,
    validate_record,
)
from fabnet.library.licenses import check_remix
from fabnet.library.lineage import lineage
from fabnet.library.mesh import MeshFacts, MeshReport
from fabnet.library.mesh_sandbox import check_upload

STAGING = ".staging"  # inside a library: uploads being written, never listed as designs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Added:
    """A design just added, with the mesh notes and license notices to show."""

    design: Design
    notes: tuple[str, ...]
    facts: MeshFacts


def add_design(
    file: Path,
    slug: str,
    record: DesignRecord,
    directory: Path | None,
    accept: Callable[[MeshFacts], None] | None = None,
    check: Callable[[Path], MeshReport] = check_upload,
) -> Added:
    """Copy ``file`` into ``<directory>/<slug>/`` and write its design.toml.

    Nothing reaches the library until the design is accepted: the mesh is checked by
    ``check`` (by default in a limited child process), ``accept`` (the hub's own checks of
    the facts) may raise, and the folder is written under ``<directory>/.staging`` and moved
    into place only then; a refused design leaves nothing behind.

    ``directory`` is the user's library (a hub's ``<data_dir>/designs``); it is required, so
    that nothing is ever written into the seeded library fabnet ships. ``record.mesh`` is
    replaced by the file's name. Raises InvalidInput without ``directory``, Conflict when the
    slug exists in it or in the seeded library, MeshError when the mesh is refused (not a
    mesh, not watertight, wrong units…), LicenseError when the license or the parent's
    license forbids it, ConfigError for bad fields and NotFound for a missing parent.
    """
    if directory is None:
        raise InvalidInput(
            f"design {slug!r}: no library folder to add it to (a hub's <data_dir>/designs)"
        )
    root = directory
    check_slug(slug)
    target = root / slug
    existing = find_folder(slug, root)
    if target.exists() or existing is not None:
        raise Conflict(f"design {slug!r} already exists in {(existing or target).parent}")
    file = Path(file)
    record = DesignRecord(**{**record.__dict__, "mesh": file.name})
    validate_record(record, target / DESIGN_FILE)
    notices: list[str] = []
    if record.remix_of is not None:
        parent = load_design(record.remix_of, root)
        lineage(parent, root)
        notices = check_remix(parent.slug, parent.license, record.license)
    report = check(file)
    if not report.ok:
        error = report.error()
        raise MeshError(f"{file.name}: {error}", reason=error.reason, **error.facts)
    if accept is not None:
        accept(report.facts)
    (root / STAGING).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=root / STAGING))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a library folder is shared
        shutil.copyfile(file, staging / file.name)
        (staging / DESIGN_FILE).write_text(render_record(record), encoding="utf-8")
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("added design %s (%s)", slug, file.name)
    return Added(load_design(slug, root), tuple(report.notes) + tuple(notices), report.facts)


def remix_design(
    parent_slug: str,
    slug: str,
    file: Path,
    name: str,
    author: str,
    license: str | None = None,
    version: str = "1.0",
    description: str = "",
    tags: tuple[str, ...] | None = None,
    directory: Path | None = None,
    accept: Callable[[MeshFacts], None] | None = None,
) -> Added:
    """Add ``file`` to the library ``directory`` as a remix of ``parent_slug`` (looked up there
    and in the seeded library); the license defaults to the parent's. Raises as add_design."""
    parent = load_design(parent_slug, directory)
    record = DesignRecord(
        name=name,
        author=author,
        license=license or parent.license,
        version=version,
        mesh=Path(file).name,
        description=description or f"remix of {parent.name} v{parent.version}",
        tags=parent.tags if tags is None else tags,
        remix_of=parent.slug,
        source_url=None,
    )
    return add_design(Path(file), slug, record, directory, accept)
