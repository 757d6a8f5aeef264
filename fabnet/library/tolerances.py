"""Every tolerance and limit the mesh code uses, in one place (lengths in mm)."""

from __future__ import annotations

# Vertices closer than 10**-MERGE_DIGITS mm are the same vertex (trimesh's default merge).
MERGE_DIGITS = 8

# Refuse meshes with more triangles than this unless the caller raises the limit.
MAX_TRIANGLES = 2_000_000

# A body with fewer faces than a tetrahedron, or less volume than this, is a sliver.
SLIVER_MAX_FACES = 3
SLIVER_VOLUME_MM3 = 1e-6

# Plausible part sizes: a largest bbox side outside this range suggests wrong units.
PLAUSIBLE_MIN_SIDE_MM = 1.0
PLAUSIBLE_MAX_SIDE_MM = 1000.0

# Scale factors tried, in order, when a mesh looks too big: 0.1 mm units, then microns.
SHRINK_FACTORS = (0.1, 0.001)
INCH_MM = 25.4
METRE_MM = 1000.0

# 3MF (zip) bounds: a zip bomb is refused before it is unpacked.
MAX_3MF_MEMBERS = 1000
MAX_3MF_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_3MF_RATIO = 200.0
# Members smaller than this may have any compression ratio (tiny XML compresses well).
RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Vertices a 3MF's components may expand to (3 per triangle covers unshared vertices).
MAX_VERTICES = 3 * MAX_TRIANGLES

# The shortest ASCII STL facet ("facet normal 0 0 0 outer loop vertex 0 0 0 ... endfacet"),
# so that an ASCII file's size bounds its triangle count before it is parsed.
MIN_ASCII_STL_FACET_BYTES = 80

# Uploaded meshes are checked in a child process: at most this much more memory, this much
# time (wall clock, and CPU), and this many children at once.
MESH_WORK_MEMORY_BYTES = 3 * 1024 * 1024 * 1024
MESH_WORK_TIME_S = 120.0
MESH_WORKERS = 2

# Holes are filled only while the open edges are at most this many (a soup has millions).
MAX_FILL_OPEN_EDGES = 20_000

# The largest mesh file an upload may be (a binary STL of MAX_TRIANGLES is ~100 MB).
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
