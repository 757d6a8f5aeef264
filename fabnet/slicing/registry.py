"""Slicers by name: the one place that turns "builtin", "prusaslicer", "curaengine" or "cnc"
into a ``Slicer``, and says which external slicers this machine has installed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fabnet.errors import InvalidInput, ToolMissing
from fabnet.profiles import CncProfile

if TYPE_CHECKING:
    from fabnet.profiles import MachineProfile
    from fabnet.slicing.base import Slicer

log = logging.getLogger(__name__)

BUILTIN = "builtin"
PRUSASLICER = "prusaslicer"
CURAENGINE = "curaengine"
CNC = "cnc"
SLICER_NAMES = (BUILTIN, PRUSASLICER, CURAENGINE, CNC)
EXTERNAL_NAMES = (PRUSASLICER, CURAENGINE)


def _normalise(name: str) -> str:
    key = name.strip().lower()
    if key not in SLICER_NAMES:
        raise InvalidInput(f"slicer must be one of {', '.join(SLICER_NAMES)}; got {name!r}")
    return key


def get_slicer(name: str, search_path: str | None = None) -> Slicer:
    """The slicer called ``name`` (case-insensitive); InvalidInput naming the choices otherwise.

    ``search_path`` replaces ``$PATH`` when the external slicers look for their binaries.
    Construction never runs a program: a missing binary raises ToolMissing on ``slice``.
    """
    key = _normalise(name)
    if key == BUILTIN:
        from fabnet.slicing.fdm import BuiltinSlicer

        return BuiltinSlicer()
    if key == CNC:
        from fabnet.slicing.cnc import CncToolpathGenerator

        return CncToolpathGenerator()
    if key == PRUSASLICER:
        from fabnet.slicing.prusaslicer import PrusaSlicer

        return PrusaSlicer(search_path=search_path)
    from fabnet.slicing.curaengine import CuraEngineSlicer

    return CuraEngineSlicer(search_path=search_path)


def available_slicers(search_path: str | None = None) -> dict[str, bool]:
    """Every slicer name → whether it can run here (built-ins always; externals if installed)."""
    from fabnet.slicing.curaengine import CuraEngineSlicer, find_resources
    from fabnet.slicing.prusaslicer import PrusaSlicer

    found = {BUILTIN: True, CNC: True}
    try:
        PrusaSlicer(search_path=search_path).binary()
        found[PRUSASLICER] = True
    except ToolMissing as exc:
        log.debug("prusaslicer unavailable: %s", exc)
        found[PRUSASLICER] = False
    try:
        CuraEngineSlicer(search_path=search_path).binary()
        find_resources()
        found[CURAENGINE] = True
    except ToolMissing as exc:
        log.debug("curaengine unavailable: %s", exc)
        found[CURAENGINE] = False
    return {name: found[name] for name in SLICER_NAMES}


def slicer_name_for(profile: MachineProfile, preferred: str | None = None) -> str:
    """The slicer name to use for ``profile``: CNC profiles always get "cnc"; FDM profiles get
    ``preferred`` (default "builtin"). InvalidInput for an unknown name or "cnc" on a printer.
    """
    if isinstance(profile, CncProfile):
        return CNC
    key = BUILTIN if preferred is None else _normalise(preferred)
    if key == CNC:
        raise InvalidInput(f"slicer 'cnc' cannot slice for FDM profile {profile.id!r}")
    return key


def slicer_for(
    profile: MachineProfile, preferred: str | None = None, search_path: str | None = None
) -> Slicer:
    """The ``Slicer`` for ``profile`` as chosen by ``slicer_name_for``."""
    return get_slicer(slicer_name_for(profile, preferred), search_path=search_path)
