"""The open design library: designs with licenses and lineage, and the mesh checks they pass."""
