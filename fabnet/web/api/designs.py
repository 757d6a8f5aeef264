"""``/designs``: list, show (facts, license, lineage), upload (mesh checks) and remix
(license rules) through ``fabnet.library``; new designs join the hub's catalog."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage

from fabnet.errors import InvalidInput
from fabnet.hub.designs import DesignEntry, accept_facts
from fabnet.library.catalog import Added, add_design, remix_design
from fabnet.library.design_toml import DesignRecord
from fabnet.library.licenses import NOASSERTION, is_share_alike, parse_license
from fabnet.library.lineage import credits
from fabnet.library.mesh_io import MESH_SUFFIXES
from fabnet.library.tolerances import MAX_UPLOAD_BYTES
from fabnet.web.api.context import LIMIT, OFFSET, ApiContext
from fabnet.web.api.jobs import paged
from fabnet.web.auth import MAKER, OPERATOR, REQUESTER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

log = logging.getLogger(__name__)

ANY_ROLE = (MAKER, REQUESTER, OPERATOR)
SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")

DESIGN_FIELDS = (
    Field("id", "string", required=True, description="sha256 of the mesh file"),
    Field("slug", "string", required=True, min_length=1),
    Field("name", "string", required=True, min_length=1),
    Field("author", "string", required=True, min_length=1),
    Field("license", "string", required=True, min_length=1, description="SPDX expression"),
    Field("version", "string", required=True),
    Field("remix_of", "string", nullable=True, required=True, description="parent slug"),
    Field("tags", "array", required=True, items=Field("tag", "string")),
    Field("size_mm", "array", required=True, items=Field("mm", "number")),
    Field("triangles", "integer", required=True),
    Field("volume_mm3", "number", required=True),
    Field("watertight", "boolean", required=True),
)
DESIGN = Schema("Design", DESIGN_FIELDS)
LICENSE = Schema(
    "License",
    (
        Field("expression", "string", required=True),
        Field("non_commercial", "boolean", required=True),
        Field("no_derivatives", "boolean", required=True),
        Field("share_alike", "boolean", required=True),
    ),
)
CREDIT = Schema(
    "Credit",
    (
        Field("slug", "string", required=True, min_length=1),
        Field("name", "string", required=True, min_length=1),
        Field("version", "string", required=True),
        Field("author", "string", required=True, min_length=1),
        Field("license", "string", required=True, min_length=1),
        Field("source_url", "string", nullable=True, required=True),
        Field("non_commercial", "boolean", required=True),
    ),
)
DESIGN_DETAIL = Schema(
    "DesignDetail",
    (
        *DESIGN_FIELDS,
        Field("description", "string", required=True),
        Field("source_url", "string", nullable=True, required=True),
        Field("facts", "object", required=True, description="mesh facts (mm), see MeshFacts"),
        Field("license_terms", "object", required=True, schema=LICENSE),
        Field("lineage", "array", required=True, items=CREDIT, description="self, then parents"),
        Field("remixes", "array", required=True, items=Field("slug", "string")),
        Field("notes", "array", items=Field("note", "string"), description="upload notes"),
    ),
)
DESIGN_QUERY = Schema("DesignQuery", (LIMIT, OFFSET, Field("tag", "string")))
_FILE = Field("file", "string", required=True, format="binary", description="STL, 3MF or OBJ")
_META = (
    Field(
        "slug",
        "string",
        required=True,
        min_length=1,
        max_length=80,
        description="lower-case-hyphenated",
    ),
    Field("name", "string", required=True, min_length=1, max_length=200),
    Field("version", "string", default="1.0", max_length=32),
    Field("description", "string", default="", max_length=2000),
    Field("tags", "string", default="", description="comma-separated"),
)
DESIGN_UPLOAD = Schema(
    "DesignUpload",
    (
        _FILE,
        *_META,
        Field("author", "string", required=True, min_length=1, max_length=200),
        Field("license", "string", required=True, min_length=1, max_length=64, description="SPDX"),
        Field("source_url", "string", max_length=500),
    ),
)
DESIGN_REMIX = Schema(
    "DesignRemix",
    (
        _FILE,
        *_META,
        Field("author", "string", max_length=200, description="default: your user name"),
        Field("license", "string", max_length=64, description="default: the parent's"),
    ),
)


def license_terms(expression: str) -> dict[str, Any]:
    if expression == NOASSERTION:
        return {"expression": expression, "non_commercial": False, "no_derivatives": False,
                "share_alike": False}  # fmt: skip
    parsed = parse_license(expression)
    return {
        "expression": expression,
        "non_commercial": parsed.non_commercial,
        "no_derivatives": parsed.no_derivatives,
        "share_alike": any(is_share_alike(i) for i in parsed.ids),
    }


def design_json(entry: DesignEntry) -> dict[str, Any]:
    d, f = entry.design, entry.facts
    return {
        "id": d.sha256,
        "slug": d.slug,
        "name": d.name,
        "author": d.author,
        "license": d.license,
        "version": d.version,
        "remix_of": d.remix_of,
        "tags": list(d.tags),
        "size_mm": list(f.size_mm),
        "triangles": f.triangles,
        "volume_mm3": f.volume_mm3,
        "watertight": f.watertight,
    }


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _saved(upload: FileStorage, folder: Path) -> Path:
    """The upload written to ``folder`` under a safe name with its mesh suffix."""
    name = Path(upload.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InvalidInput(
            f"file must be one of {', '.join(MESH_SUFFIXES)}, got {upload.filename!r}"
        )
    stem = SAFE_STEM.sub("-", Path(name).stem).strip("-.") or "mesh"
    path = folder / f"{stem[:80]}{suffix}"
    upload.save(path)
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"file must be at most {MAX_UPLOAD_BYTES} bytes, got {size}")
    return path


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    catalog = ctx.service.designs

    def detail(entry: DesignEntry, notes: tuple[str, ...] = ()) -> dict[str, Any]:
        d = entry.design
        data = design_json(entry)
        data["description"] = d.description
        data["source_url"] = d.source_url
        data["facts"] = entry.facts.to_dict()
        data["license_terms"] = license_terms(d.license)
        chain = credits(d, ctx.library_dir) if not d.ad_hoc else []
        data["lineage"] = [c.__dict__ for c in chain]
        data["remixes"] = sorted(
            e.design.slug for e in catalog.entries() if e.design.remix_of == d.slug
        )
        data["notes"] = list(notes)
        return data

    def added(result: Added) -> dict[str, Any]:
        """Register a design just added (facts measured by its check); should the hub still
        refuse it, its folder goes, so that the library never holds a design the hub can't."""
        registered = False
        try:
            entry = catalog.register(result.design, ctx.clock(), result.facts)
            registered = True
        finally:
            if not registered and result.design.directory is not None:
                shutil.rmtree(result.design.directory, ignore_errors=True)
                log.warning("design %s removed again: the hub refused it", result.design.slug)
        return detail(entry, result.notes)

    @routes.route(
        "GET",
        "/designs",
        summary="List designs",
        roles=ANY_ROLE,
        query=DESIGN_QUERY,
        response=ListOf(DESIGN),
    )
    def list_designs(user: User | None, query: dict[str, Any]) -> Any:
        entries = catalog.entries()
        if query["tag"]:
            entries = [e for e in entries if query["tag"] in e.design.tags]
        limit, offset = query["limit"], query["offset"]
        return paged([design_json(e) for e in entries[offset : offset + limit]], limit, offset)

    @routes.route(
        "GET",
        "/designs/<ref>",
        summary="A design by id or slug: facts, license, lineage",
        roles=ANY_ROLE,
        response=DESIGN_DETAIL,
    )
    def show_design(user: User | None, ref: str) -> dict[str, Any]:
        return detail(catalog.resolve(ref))

    @routes.route(
        "POST",
        "/designs",
        summary="Upload a design (mesh checked; refused mesh → 400)",
        roles=ANY_ROLE,
        form=DESIGN_UPLOAD,
        response=DESIGN_DETAIL,
        status=201,
    )
    def upload_design(user: User | None, form: dict[str, Any]) -> dict[str, Any]:
        record = DesignRecord(
            name=form["name"],
            author=form["author"],
            license=form["license"],
            version=form["version"],
            mesh="",
            description=form["description"],
            tags=_tags(form["tags"]),
            source_url=form["source_url"] or None,
        )
        with tempfile.TemporaryDirectory(prefix="fabnet-upload-") as folder:
            path = _saved(form["file"], Path(folder))
            return added(add_design(path, form["slug"], record, ctx.library_dir, accept_facts))

    @routes.route(
        "POST",
        "/designs/<ref>/remix",
        summary="Upload a remix of a design (license rules: 400 naming the rule; slug taken: 409)",
        roles=ANY_ROLE,
        form=DESIGN_REMIX,
        response=DESIGN_DETAIL,
        status=201,
    )
    def remix(user: User | None, ref: str, form: dict[str, Any]) -> dict[str, Any]:
        parent = catalog.resolve(ref).design
        with tempfile.TemporaryDirectory(prefix="fabnet-upload-") as folder:
            path = _saved(form["file"], Path(folder))
            result = remix_design(
                parent.slug,
                form["slug"],
                path,
                name=form["name"],
                author=form["author"] or user_of(user).name,
                license=form["license"],
                version=form["version"],
                description=form["description"],
                tags=_tags(form["tags"]) or None,
                directory=ctx.library_dir,
                accept=accept_facts,
            )
            return added(result)
