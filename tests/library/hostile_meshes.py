"""Hostile mesh files, generated: 3MF component fan-out, zip bombs, flat surfaces, triangle
soups, and a seeded corpus of mutations (truncations, bit flips, NaN, huge header counts)."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)
TETRA_VERTICES = ((0, 0, 0), (10, 0, 0), (0, 10, 0), (0, 0, 10))
TETRA_FACES = ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3))


def model_xml(objects: str, items: str, unit: str = "millimeter") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><model unit="{unit}" xmlns="{CORE_NS}">'
        f"<resources>{objects}</resources><build>{items}</build></model>"
    )


def tetra_object(object_id: int = 1, x: str = "0") -> str:
    """A 10 mm tetrahedron object; ``x`` is its first vertex's x ("NaN", "abc" to break it)."""
    vertices = [f'<vertex x="{a}" y="{b}" z="{c}"/>' for a, b, c in TETRA_VERTICES]
    vertices[0] = f'<vertex x="{x}" y="0" z="0"/>'
    faces = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in TETRA_FACES)
    return (
        f'<object id="{object_id}" type="model"><mesh><vertices>{"".join(vertices)}</vertices>'
        f"<triangles>{faces}</triangles></mesh></object>"
    )


def threemf_bytes(model: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("3D/3dmodel.model", model)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def fan_out_3mf(levels: int = 15, fan: int = 4) -> bytes:
    """A tetrahedron, then ``levels`` objects each holding ``fan`` components of the one
    before: 4 x fan**levels triangles (4 x 4**15 = 4,294,967,296) in a few KB."""
    objects = [tetra_object(1)]
    for level in range(2, levels + 2):
        comps = "".join(
            f'<component objectid="{level - 1}" transform="1 0 0 0 1 0 0 0 1 {i} 0 0"/>'
            for i in range(fan)
        )
        objects.append(
            f'<object id="{level}" type="model"><components>{comps}</components></object>'
        )
    return threemf_bytes(model_xml("".join(objects), f'<item objectid="{levels + 1}"/>'))


def fan_out_triangles(levels: int = 15, fan: int = 4) -> int:
    return len(TETRA_FACES) * fan**levels


def binary_stl(triangles: np.ndarray) -> bytes:
    """A binary STL of ``triangles`` (n, 3, 3) mm."""
    n = len(triangles)
    records = np.zeros(n, dtype=[("normal", "<f4", 3), ("v", "<f4", 9), ("attr", "<u2")])
    records["v"] = np.asarray(triangles, dtype=np.float32).reshape(n, 9)
    return b"\0" * 80 + struct.pack("<I", n) + records.tobytes()


def flat_square_stl(side_mm: float = 20.0) -> bytes:
    """A double-sided square: 4 triangles, every edge used twice (closed), no thickness."""
    a, b, c, d = (0, 0, 0), (side_mm, 0, 0), (side_mm, side_mm, 0), (0, side_mm, 0)
    up = [(a, b, c), (a, c, d)]
    down = [(a, c, b), (a, d, c)]
    return binary_stl(np.array(up + down, dtype=np.float64))


def soup_stl(triangles: int, seed: int = 1) -> bytes:
    """``triangles`` random triangles in a 100 mm cube: no two share an edge."""
    rng = np.random.default_rng(seed)
    return binary_stl(rng.uniform(0.0, 100.0, (triangles, 3, 3)))


def zip_bomb_3mf(megabytes: int = 100) -> bytes:
    """A 3MF with a member of ``megabytes`` MB of spaces (ratio near 1000:1), written in
    1 MiB chunks so that making it costs no memory."""
    buffer = io.BytesIO(threemf_bytes(model_xml(tetra_object(1), '<item objectid="1"/>')))
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("3D/pad.xml", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(b" " * (1 << 20))
    return buffer.getvalue()


def ascii_stl(triangles: np.ndarray) -> bytes:
    lines = ["solid corpus"]
    for tri in np.asarray(triangles, dtype=np.float64):
        lines.append("facet normal 0 0 0\nouter loop")
        lines.extend(f"vertex {x:g} {y:g} {z:g}" for x, y, z in tri)
        lines.append("endloop\nendfacet")
    lines.append("endsolid corpus")
    return ("\n".join(lines) + "\n").encode()


def obj_text(vertices: tuple[tuple[float, ...], ...], faces: tuple[tuple[int, ...], ...]) -> bytes:
    body = [f"v {x} {y} {z}" for x, y, z in vertices]
    body += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return ("\n".join(body) + "\n").encode()


def corpus(seed: int = 13, flips: int = 40) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every hostile file: seeded, so the same corpus each run."""
    rng = random.Random(seed)
    cube = (MODELS / "cube_xyz_20mm.stl").read_bytes()
    tetra = np.array([[TETRA_VERTICES[i] for i in face] for face in TETRA_FACES], float)
    bases = {
        "cube.stl": cube,
        "tetra-ascii.stl": ascii_stl(tetra),
        "tetra.obj": obj_text(TETRA_VERTICES, TETRA_FACES),
        "tetra.3mf": threemf_bytes(model_xml(tetra_object(1), '<item objectid="1"/>')),
    }
    out: list[tuple[str, bytes]] = []
    for name, data in bases.items():
        for cut in (0.02, 0.3, 0.5, 0.77, 0.99):
            out.append((f"trunc-{cut}-{name}", data[: int(len(data) * cut)]))
        for flip in range(flips):
            flipped = bytearray(data)
            for _ in range(1 + flip % 4):
                index = rng.randrange(len(flipped))
                flipped[index] ^= 1 << rng.randrange(8)
            out.append((f"flip-{flip}-{name}", bytes(flipped)))
    out += _nan_files(cube, tetra)
    out += _header_files(cube)
    out += _archive_files()
    return out


def _nan_files(cube: bytes, tetra: np.ndarray) -> list[tuple[str, bytes]]:
    nan_cube = bytearray(cube)
    nan_cube[84 + 12 : 84 + 16] = struct.pack("<f", float("nan"))
    inf_cube = bytearray(cube)
    inf_cube[84 + 16 : 84 + 20] = struct.pack("<f", float("inf"))
    nan_tetra = tetra.copy()
    nan_tetra[0, 0, 0] = np.nan
    return [
        ("nan.stl", bytes(nan_cube)),
        ("inf.stl", bytes(inf_cube)),
        ("nan-ascii.stl", ascii_stl(nan_tetra)),
        ("nan.obj", obj_text(((float("nan"), 0, 0), *TETRA_VERTICES[1:]), TETRA_FACES)),
        ("nan.3mf", threemf_bytes(model_xml(tetra_object(1, "NaN"), '<item objectid="1"/>'))),
        ("word.3mf", threemf_bytes(model_xml(tetra_object(1, "abc"), '<item objectid="1"/>'))),
        (
            "huge-number.3mf",
            threemf_bytes(model_xml(tetra_object(1, "1e999"), '<item objectid="1"/>')),
        ),
    ]


def _header_files(cube: bytes) -> list[tuple[str, bytes]]:
    def with_count(count: int) -> bytes:
        return cube[:80] + struct.pack("<I", count) + cube[84:]

    huge_index = model_xml(
        tetra_object(1).replace('v3="1"', 'v3="99999999999999999999"'), '<item objectid="1"/>'
    )
    return [
        ("count-max.stl", with_count(0xFFFFFFFF)),
        ("count-plus-one.stl", with_count(struct.unpack("<I", cube[80:84])[0] + 1)),
        ("count-zero.stl", with_count(0)),
        ("header-only.stl", cube[:84]),
        ("faces-no-vertices.obj", b"f 1 2 3\nf 4 5 6\n"),
        ("huge-index.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 99999999999999999999\n"),
        ("huge-index.3mf", threemf_bytes(huge_index)),
        ("flat.stl", flat_square_stl()),
        ("empty.stl", b""),
    ]


def _archive_files() -> list[tuple[str, bytes]]:
    tetra_model = model_xml(tetra_object(1), '<item objectid="1"/>')
    many = {f"junk/{i}.bin": b"x" for i in range(1100)}
    corrupt = bytearray(threemf_bytes(tetra_model + " " * 4000))
    start = corrupt.find(b"3D/3dmodel.model") + len("3D/3dmodel.model")
    for i in range(start + 40, start + 80):
        corrupt[i] ^= 0x5A
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("3D/3dmodel.model", "<model")
    cyclic = model_xml(
        '<object id="1" type="model"><components><component objectid="2"/></components></object>'
        '<object id="2" type="model"><components><component objectid="1"/></components></object>',
        '<item objectid="1"/>',
    )
    return [
        ("fan-out.3mf", fan_out_3mf()),
        ("cyclic.3mf", threemf_bytes(cyclic)),
        ("zip-bomb.3mf", zip_bomb_3mf()),
        ("many-members.3mf", threemf_bytes(tetra_model, many)),
        ("corrupt-deflate.3mf", bytes(corrupt)),
        ("bad-xml.3mf", bytes(stored.getvalue())),
        ("not-a-zip.3mf", b"PK\x03\x04" + b"\0" * 100),
    ]
