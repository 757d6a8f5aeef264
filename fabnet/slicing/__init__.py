"""Turning meshes into G-code: the ``Slicer`` seam, the built-in FDM slicer, CNC toolpaths."""

from fabnet.slicing.base import Slicer, SliceResult, SliceSettings

__all__ = ["SliceResult", "SliceSettings", "Slicer"]
