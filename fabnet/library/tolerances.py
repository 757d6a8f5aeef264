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
