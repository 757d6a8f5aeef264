"""Read mesh files (STL ascii/binary, OBJ, 3MF) into one raw ``trimesh.Trimesh`` in mm."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import trimesh

from fabnet.errors import MeshError, NotFound
from fabnet.library.threemf import read_3mf
from fabnet.library.tolerances import MAX_TRIANGLES, MIN_ASCII_STL_FACET_BYTES

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".stl", ".obj", ".3mf")

# trimesh's parsers raise these on malformed input; anything else is a bug and propagates.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError, struct.error, UnicodeDecodeError)


def load_mesh(path: Path, max_triangles: int = MAX_TRIANGLES) -> trimesh.Trimesh:
    """Load ``path`` as one raw mesh (``process=False``: every triangle kept), units mm.

    Multi-object files (OBJ groups, 3MF build items) are concatenated into one mesh. The
    triangle count is bounded before the triangles are read: from a binary STL's header, an
    ASCII STL's size, an OBJ's face lines, a 3MF's expanded components.
    Raises NotFound when the file is missing and MeshError with reason ``not_a_mesh``
    (unknown suffix, unparseable content, a 3MF over its size bounds), ``too_many_triangles``
    or ``empty``.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no such mesh file: {path}")
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(
            f"{path.name}: unsupported mesh type {suffix!r}; use one of {', '.join(MESH_SUFFIXES)}",
            reason="not_a_mesh",
        )
    if path.stat().st_size == 0:
        raise MeshError(f"{path.name}: file is empty (0 bytes)", reason="empty")
    if suffix == ".3mf":
        vertices, faces = read_3mf(path, max_triangles)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    elif suffix == ".stl":
        mesh = _load_stl(path, max_triangles)
    else:
        _check_count(path, _obj_face_lines(path), max_triangles, "OBJ face lines")
        mesh = _load_obj(path)
    if len(mesh.faces) == 0:
        raise MeshError(f"{path.name}: the file holds no triangles", reason="empty")
    if not np.isfinite(mesh.vertices).all():
        raise MeshError(f"{path.name}: vertices contain NaN or infinity", reason="not_a_mesh")
    log.debug("loaded %s: %d triangles", path, len(mesh.faces))
    return mesh


def _check_count(path: Path, count: int, max_triangles: int, what: str) -> None:
    if count > max_triangles:
        raise MeshError(
            f"{path.name}: too many triangles: {count}, the limit is {max_triangles} ({what})",
            reason="too_many_triangles",
        )


def _obj_face_lines(path: Path) -> int:
    """How many ``f`` lines an OBJ has (each is at least one triangle), read in 1 MiB chunks."""
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\nf ") + chunk.count(b"\nf\t")
            count += int(last == b"\n" and chunk[:2] in (b"f ", b"f\t"))
            last = chunk[-1:]
    return count


def _stl_kind(path: Path, max_triangles: int = MAX_TRIANGLES) -> str:
    """``binary`` or ``ascii`` by the file's own structure; MeshError when it is neither or
    when its header (binary) or its size (ASCII) says it holds over ``max_triangles``."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(84)
    if size >= 84:
        declared = struct.unpack("<I", head[80:84])[0]
        if 84 + 50 * declared == size:
            _check_count(path, declared, max_triangles, "from the binary STL header")
            return "binary"
    if head.lstrip().lower().startswith(b"solid"):
        _check_count(path, size // MIN_ASCII_STL_FACET_BYTES, max_triangles,
                     f"at most, from an ASCII STL of {size} bytes")  # fmt: skip
        return "ascii"
    raise MeshError(
        f"{path.name}: not an STL file (neither binary: 84 + 50 x n bytes, "
        "nor ASCII: starting with 'solid')",
        reason="not_a_mesh",
    )


def _load_stl(path: Path, max_triangles: int) -> trimesh.Trimesh:
    kind = _stl_kind(path, max_triangles)
    try:
        loaded = trimesh.load(str(path), file_type="stl", process=False)
    except _PARSE_ERRORS as exc:
        raise MeshError(
            f"{path.name}: cannot parse {kind} STL: {exc}", reason="not_a_mesh"
        ) from exc
    mesh = _as_one_mesh(loaded)
    if mesh is None:
        no_facets = kind == "ascii" and b"facet" not in path.read_bytes()[:1_000_000]
        if no_facets or (kind == "binary" and path.stat().st_size == 84):
            return trimesh.Trimesh(process=False)
        raise MeshError(f"{path.name}: cannot parse {kind} STL", reason="not_a_mesh")
    return mesh


def _load_obj(path: Path) -> trimesh.Trimesh:
    try:
        loaded = trimesh.load(str(path), file_type="obj", process=False)
    except _PARSE_ERRORS as exc:
        raise MeshError(f"{path.name}: cannot parse OBJ: {exc}", reason="not_a_mesh") from exc
    mesh = _as_one_mesh(loaded)
    if mesh is not None:
        return mesh
    with path.open("rb") as handle:
        has_vertices = any(line.startswith(b"v ") for line in handle)
    if has_vertices:
        return trimesh.Trimesh(process=False)
    raise MeshError(f"{path.name}: not an OBJ file (no 'v' vertex lines)", reason="not_a_mesh")


def _as_one_mesh(loaded: object) -> trimesh.Trimesh | None:
    """One Trimesh from whatever trimesh returned; None when it found no triangles."""
    if isinstance(loaded, trimesh.Trimesh):
        return loaded if len(loaded.faces) else None
    if isinstance(loaded, trimesh.Scene):
        parts = [
            geometry.copy().apply_transform(loaded.graph.get(node)[0])
            for node in loaded.graph.nodes_geometry
            for geometry in [loaded.geometry[loaded.graph.get(node)[1]]]
            if isinstance(geometry, trimesh.Trimesh) and len(geometry.faces)
        ]
        if not parts:
            return None
        joined = trimesh.util.concatenate(parts)
        return joined if isinstance(joined, trimesh.Trimesh) else None
    return None
