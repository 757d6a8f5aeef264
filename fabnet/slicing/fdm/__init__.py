"""fabnet's built-in FDM slicer: vectorised mesh sections, shapely walls and infill, G-code."""

from fabnet.slicing.fdm.slicer import BuiltinSlicer, ProgressCallback, read_header

__all__ = ["BuiltinSlicer", "ProgressCallback", "read_header"]
