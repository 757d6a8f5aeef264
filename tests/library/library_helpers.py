"""Helpers for the design library tests: hand-written designs, 3MF files and broken meshes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import trimesh

from fabnet.library.design_toml import DesignRecord, render_record
from fabnet.library.mesh import load_mesh

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)


def write_design(root: Path, slug: str, license_id: str, remix_of: str | None = None) -> Path:
    """A design folder holding a copy of the 20 mm cube, written by hand."""
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "cube.stl").write_bytes((MODELS / "cube_xyz_20mm.stl").read_bytes())
    record = DesignRecord(
        name=f"Design {slug}",
        author=f"author of {slug}",
        license=license_id,
        version="1.0",
        mesh="cube.stl",
        remix_of=remix_of,
        source_url=f"https://example.org/{slug}",
    )
    (folder / "design.toml").write_text(render_record(record))
    return folder


def write_3mf(path: Path, mesh: trimesh.Trimesh, unit: str = "millimeter", copies: int = 1) -> Path:
    """A 3MF file with ``mesh`` as object 1 and ``copies`` build items 100 mm apart in X.

    Copies after the first go through a component object, as slicers write them.
    """
    vertices = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in mesh.vertices)
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in mesh.faces)
    objects = [
        f'<object id="1" type="model"><mesh><vertices>{vertices}</vertices>'
        f"<triangles>{triangles}</triangles></mesh></object>",
        '<object id="2" type="model"><components>'
        '<component objectid="1" transform="1 0 0 0 1 0 0 0 1 0 0 0"/></components></object>',
    ]
    items = ['<item objectid="1"/>'] + [
        f'<item objectid="2" transform="1 0 0 0 1 0 0 0 1 {100 * i} 0 0"/>'
        for i in range(1, copies)
    ]
    model = (
        f'<?xml version="1.0" encoding="UTF-8"?><model unit="{unit}" xmlns="{CORE_NS}">'
        f"<resources>{''.join(objects)}</resources><build>{''.join(items)}</build></model>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("3D/3dmodel.model", model)
    return path


def cube_mesh() -> trimesh.Trimesh:
    """The real 20 mm cube, vertices merged (as a 3MF or OBJ would index them)."""
    mesh = load_mesh(MODELS / "cube_xyz_20mm.stl")
    mesh.merge_vertices()
    return mesh


def box_with_hole() -> trimesh.Trimesh:
    """A 10 mm box with one triangle missing: 3 open edges, a hole fill_holes can close."""
    box = trimesh.creation.box(extents=(10.0, 10.0, 10.0))
    return trimesh.Trimesh(vertices=box.vertices, faces=np.asarray(box.faces)[1:], process=False)
