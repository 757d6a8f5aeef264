"""A bounded 3MF reader: zip limits checked before unpacking, core mesh + components + build.

trimesh's own 3MF reader needs lxml; this one uses the standard library and refuses zip bombs.
"""

from __future__ import annotations

import posixpath
import re
import struct
import zipfile
import zlib
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
    MAX_TRIANGLES,
    MAX_VERTICES,
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
MAX_DEPTH = 16

# What a damaged or hostile archive makes zipfile, zlib, ElementTree and numpy raise: each is
# the file's fault, so each becomes a MeshError (HTTP 400), never an unhandled error.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ElementTree.ParseError,
    ValueError,
    TypeError,
    OverflowError,
    KeyError,
    IndexError,
    LookupError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
)


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


def read_3mf(path: Path, max_triangles: int = MAX_TRIANGLES) -> tuple[Floats, Ints]:
    """All build items of a 3MF file as one mesh: (vertices (n, 3) mm, faces (m, 3)).

    Components are counted before any is expanded, so an archive whose objects nest
    components into more than ``max_triangles`` triangles is refused without allocating them.
    Raises MeshError ``too_many_triangles`` for that, and ``not_a_mesh`` for a bad zip, a
    damaged member, a missing model part, malformed XML or numbers, or an archive over the
    limits in ``tolerances``.
    """
    try:
        parts = _read_parts(path, max_triangles)
    except MeshError:
        raise
    except _READ_ERRORS as exc:
        raise MeshError(
            f"{path.name}: malformed 3MF: {type(exc).__name__}: {exc}", reason="not_a_mesh"
        ) from exc
    if not parts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + offset for (_, f), offset in zip(parts, offsets, strict=True)])
    return vertices, faces


def _read_parts(path: Path, max_triangles: int) -> list[Part]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MeshError(
            f"{path.name}: not a 3MF file (not a zip archive)", reason="not_a_mesh"
        ) from exc
    with archive:
        check_archive(archive, path.name)
        reader = _ModelReader(archive, path.name)
        root = reader.root_part()
        triangles, vertices = reader.expanded_size(root)
        if triangles > max_triangles:
            raise MeshError(
                f"{path.name}: its components expand to {triangles} triangles, more than "
                f"the limit of {max_triangles}",
                reason="too_many_triangles",
            )
        if vertices > MAX_VERTICES:
            raise MeshError(
                f"{path.name}: its components expand to {vertices} vertices, more than "
                f"the limit of {MAX_VERTICES}",
                reason="too_many_triangles",
            )
        return reader.build(root)


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

    def _items(self, part: str) -> list[tuple[str, str, ElementTree.Element]]:
        """(model part, object id, item element) of every build item of the root ``part``."""
        self._objects(part)
        assert self.root is not None
        return [
            (item.get(PROD_PATH, "").lstrip("/") or part, item.get("objectid", ""), item)
            for item in self.root.iter(f"{CORE_NS}item")
        ]

    def expanded_size(self, part: str) -> tuple[int, int]:
        """(triangles, vertices) the build of ``part`` expands to, components counted as many
        times as they are used; each object is counted once (memoised), nothing is built."""
        memo: dict[tuple[str, str], tuple[int, int]] = {}
        triangles = vertices = 0
        for target, object_id, _ in self._items(part):
            t, v = self._count(target, object_id, memo, depth=0)
            triangles, vertices = triangles + t, vertices + v
        return triangles, vertices

    def _count(
        self, part: str, object_id: str, memo: dict[tuple[str, str], tuple[int, int]], depth: int
    ) -> tuple[int, int]:
        key = (part, object_id)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise MeshError(
                f"{self.name}: components nest deeper than {MAX_DEPTH}", reason="not_a_mesh"
            )
        obj = self._find(part, object_id)
        triangles = vertices = 0
        mesh = obj.find(f"{CORE_NS}mesh")
        if mesh is not None:
            triangles = sum(1 for _ in mesh.iter(f"{CORE_NS}triangle"))
            vertices = sum(1 for _ in mesh.iter(f"{CORE_NS}vertex"))
        for comp in obj.iter(f"{CORE_NS}component"):
            t, v = self._count(_component_part(comp, part), comp.get("objectid", ""), memo,
                               depth + 1)  # fmt: skip
            triangles, vertices = triangles + t, vertices + v
        memo[key] = (triangles, vertices)
        return memo[key]

    def _find(self, part: str, object_id: str) -> ElementTree.Element:
        _, objects = self._objects(part)
        obj = objects.get(object_id)
        if obj is None:
            raise MeshError(
                f"{self.name}: {part} has no object id {object_id}", reason="not_a_mesh"
            )
        return obj

    def build(self, part: str) -> list[Part]:
        """Every build item's mesh, transformed, in mm (the root part's unit applies)."""
        scale, _ = self._objects(part)
        out: list[Part] = []
        for target, object_id, item in self._items(part):
            out.extend(self._object(target, object_id, _matrix(item), depth=0))
        return [(vertices * scale, faces) for vertices, faces in out]

    def _object(self, part: str, object_id: str, matrix: Floats, depth: int) -> list[Part]:
        if depth > MAX_DEPTH:
            raise MeshError(
                f"{self.name}: components nest deeper than {MAX_DEPTH}", reason="not_a_mesh"
            )
        obj = self._find(part, object_id)
        mesh = obj.find(f"{CORE_NS}mesh")
        out: list[Part] = []
        if mesh is not None:
            vertices, faces = _mesh_arrays(mesh)
            out.append((_transform(vertices, matrix), faces))
        for comp in obj.iter(f"{CORE_NS}component"):
            child = _matrix(comp) @ matrix
            target = _component_part(comp, part)
            out.extend(self._object(target, comp.get("objectid", ""), child, depth + 1))
        return out


def _component_part(comp: ElementTree.Element, part: str) -> str:
    """The model part a component's object lives in: its ``p:path``, else ``part``."""
    path = comp.get(PROD_PATH)
    return posixpath.normpath(path.lstrip("/")) if path else part


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
    with np.errstate(invalid="ignore", over="ignore"):  # NaN is refused after loading
        return np.asarray(vertices @ matrix[:3, :3] + matrix[3, :3], dtype=np.float64)
