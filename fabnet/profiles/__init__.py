"""Firmware profiles and materials: the single source of each machine's physical limits."""

from fabnet.profiles.loader import (
    list_profiles,
    load_materials,
    load_profile,
    profiles_dir,
)
from fabnet.profiles.model import (
    Axes,
    CncMaterial,
    CncProfile,
    FdmMaterial,
    FdmProfile,
    GcodeFlavour,
    MachineKind,
    MachineProfile,
    Materials,
    Tool,
    Volume,
)

__all__ = [
    "Axes",
    "CncMaterial",
    "CncProfile",
    "FdmMaterial",
    "FdmProfile",
    "GcodeFlavour",
    "MachineKind",
    "MachineProfile",
    "Materials",
    "Tool",
    "Volume",
    "list_profiles",
    "load_materials",
    "load_profile",
    "profiles_dir",
]
