"""A bounded 3MF reader: zip limits checked before unpacking, core mesh + components + build.

trimesh's own 3MF reader needs lxml; this one uses the standard library and refuses zip bombs.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

from fabnet.errors import MeshError
from fabnet.library.tolerances import (
    MAX_3MF_MEMBERS,
    MAX_3MF_RATIO,
    MAX_3MF_UNCOMPRESSED_BYTES,
    RATIO_CHECK_MIN_BYTES,
)

CORE_NS = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
PROD_PATH = "{http://schemas.microsoft.com/3dmanufacturing/production/2015/06}path"
RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MODEL_REL = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
UNIT_MM = {
    "micron": 0.001,
    "millimeter": 1.0,
    "centimeter": 10.0,
    "inch": 25.4,
    "foot": 304.8,
    "meter": 1000.0,
}

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
# (vertices (n, 3) float64 mm, faces (m, 3) int64)
Part = tuple[Floats, Ints]


class _Budget:
    """Counts bytes really read from the archive; the sizes a zip declares can lie."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.used = 0

    def reader(self, stream: IO[bytes]) -> _BoundedReader:
        return _BoundedReader(stream, self)


class _BoundedReader:
    def __init__(self, stream: IO[bytes], budget: _Budget) -> None:
        self.stream = stream
        self.budget = budget

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size if size and size > 0 else 1 << 20)
        self.budget.used += len(data)
        if self.budget.used > MAX_3MF_UNCOMPRESSED_BYTES:
            raise MeshError(
                f"{self.budget.name}: unpacks to more than {MAX_3MF_UNCOMPRESSED_BYTES} bytes "
                "(limit for 3MF archives)",
                reason="not_a_mesh",
            )
        return data


def check_archive(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse an archive over the member count, total size or compression ratio limits."""
    members = archive.infolist()
    if len(members) > MAX_3MF_MEMBERS:
        raise MeshError(
            f"{name}: {len(members)} archive members, more than the limit of {MAX_3MF_MEMBERS}",
            reason="not_a_mesh",
        )
    total = sum(info.file_size for info in members)
    if total > MAX_3MF_UNCOMPRESSED_BYTES:
        raise MeshError(
            f"{name}: unpacks to {total} bytes, more than the limit of "
            f"{MAX_3MF_UNCOMPRESSED_BYTES} bytes",
            reason="not_a_mesh",
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECK_MIN_BYTES and ratio > MAX_3MF_RATIO:
            raise MeshError(
                f"{name}: member {info.filename} has compression ratio {ratio:.0f}:1, "
                f"above the limit of {MAX_3MF_RATIO:.0f}:1 (looks like a zip bomb)",
                reason="not_a_mesh",
            )


def read_3mf(path: Path) -> tuple[Floats, Ints]:
    """All build items of a 3MF file as one mesh: (vertices (n, 3) mm, faces (m, 3)).

    Raises MeshError ``not_a_mesh`` for a bad zip, a missing model part, malformed XML or
    an archive over the limits in ``tolerances``.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MeshError(
            f"{path.name}: not a 3MF file (not a zip archive)", reason="not_a_mesh"
        ) from exc
    with archive:
        check_archive(archive, path.name)
        reader = _ModelReader(archive, path.name)
        try:
            parts = reader.build(reader.root_part())
        except (ElementTree.ParseError, ValueError, KeyError, IndexError) as exc:
            raise MeshError(f"{path.name}: malformed 3MF: {exc}", reason="not_a_mesh") from exc
    if not parts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + offset for (_, f), offset in zip(parts, offsets, strict=True)])
    return vertices, faces


class _ModelReader:
    """Parses model parts on demand and resolves components and build item transforms."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.archive = archive
        self.name = name
        self.budget = _Budget(name)
        # part name -> (unit scale to mm, object id -> XML element)
        self.parts: dict[str, tuple[float, dict[str, ElementTree.Element]]] = {}
        self.root: ElementTree.Element | None = None

    def _parse(self, member: str) -> ElementTree.Element:
        try:
            stream = self.archive.open(member)
        except KeyError as exc:
            raise MeshError(f"{self.name}: missing part {member}", reason="not_a_mesh") from exc
        with stream:
            return ElementTree.parse(self.budget.reader(stream)).getroot()

    def root_part(self) -> str:
        """The model part named by ``_rels/.rels`` (default ``3D/3dmodel.model``)."""
        names = set(self.archive.namelist())
        if "_rels/.rels" in names:
            for rel in self._parse("_rels/.rels").iter(f"{RELS_NS}Relationship"):
                if rel.get("Type") == MODEL_REL:
                    return rel.get("Target", "").lstrip("/")
        if "3D/3dmodel.model" in names:
            return "3D/3dmodel.model"
        raise MeshError(f"{self.name}: no 3D model part in the archive", reason="not_a_mesh")

    def _objects(self, part: str) -> tuple[float, dict[str, ElementTree.Element]]:
        if part not in self.parts:
            root = self._parse(part)
            unit = root.get("unit", "millimeter")
            if unit not in UNIT_MM:
                raise MeshError(f"{self.name}: unknown 3MF unit {unit!r}", reason="not_a_mesh")
            objects = {obj.get("id", ""): obj for obj in root.iter(f"{CORE_NS}object")}
            self.parts[part] = (UNIT_MM[unit], objects)
            if self.root is None:
                self.root = root
        return self.parts[part]

    def build(self, part: str) -> list[Part]:
        """Every build item's mesh, transformed, in mm (the root part's unit applies)."""
        scale, _ = self._objects(part)
        assert self.root is not None
        out: list[Part] = []
        for item in self.root.iter(f"{CORE_NS}item"):
            target = item.get(PROD_PATH, "").lstrip("/") or part
            out.extend(self._object(target, item.get("objectid", ""), _matrix(item), depth=0))
        return [(vertices * scale, faces) for vertices, faces in out]

    def _object(self, part: str, object_id: str, matrix: Floats, depth: int) -> list[Part]:
        if depth > 16:
            raise MeshError(f"{self.name}: components nest deeper than 16", reason="not_a_mesh")
        _, objects = self._objects(part)
        obj = objects.get(object_id)
        if obj is None:
            raise MeshError(
                f"{self.name}: {part} has no object id {object_id}", reason="not_a_mesh"
            )
        mesh = obj.find(f"{CORE_NS}mesh")
        out: list[Part] = []
        if mesh is not None:
            vertices, faces = _mesh_arrays(mesh)
            out.append((_transform(vertices, matrix), faces))
        for comp in obj.iter(f"{CORE_NS}component"):
            target = (
                posixpath.normpath(comp.get(PROD_PATH, "").lstrip("/"))
                if comp.get(PROD_PATH)
                else part
            )
            child = _matrix(comp) @ matrix
            out.extend(self._object(target, comp.get("objectid", ""), child, depth + 1))
        return out


def _mesh_arrays(mesh: ElementTree.Element) -> tuple[Floats, Ints]:
    vertices = np.array(
        [(v.get("x"), v.get("y"), v.get("z")) for v in mesh.iter(f"{CORE_NS}vertex")],
        dtype=np.float64,
    ).reshape(-1, 3)
    faces = np.array(
        [(t.get("v1"), t.get("v2"), t.get("v3")) for t in mesh.iter(f"{CORE_NS}triangle")],
        dtype=np.int64,
    ).reshape(-1, 3)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"triangle index out of range 0..{len(vertices) - 1}")
    return vertices, faces


_NUMBER = re.compile(r"[^\s]+")


def _matrix(element: ElementTree.Element) -> Floats:
    """The 4x4 row-vector matrix of a 3MF ``transform`` attribute (identity when absent)."""
    text = element.get("transform")
    matrix = np.eye(4)
    if text:
        values = np.array(_NUMBER.findall(text), dtype=np.float64)
        if values.shape != (12,):
            raise ValueError(f"transform needs 12 numbers, got {len(values)}")
        matrix[:, :3] = values.reshape(4, 3)
    return matrix


def _transform(vertices: Floats, matrix: Floats) -> Floats:
    """Apply a row-vector 3MF matrix to (n, 3) vertices."""
    return np.asarray(vertices @ matrix[:3, :3] + matrix[3, :3], dtype=np.float64)
