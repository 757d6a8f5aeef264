"""Canonical spellings of material names and profile ids, fixed where they enter fabnet.

A maker may write ``"pla"`` and a requester ``"Pla"``; the matcher compares exactly, so every
edge (config file, registration, job submission) turns a name into the materials table's own
spelling (``PLA``, ``plywood``) or the profile's file stem, or refuses it naming the choices.
"""

from __future__ import annotations

from fabnet.errors import InvalidInput
from fabnet.profiles.loader import list_profiles, load_materials
from fabnet.profiles.model import CncMaterial, FdmMaterial


def canonical_material(name: str, field: str = "material") -> str:
    """The materials table's spelling of ``name`` (case-insensitive, spaces trimmed).
    Raises InvalidInput naming ``field``, the value and the known materials."""
    materials = load_materials()
    key = name.strip().lower()
    found: FdmMaterial | CncMaterial | None = materials.fdm.get(key) or materials.cnc.get(key)
    if found is None:
        names = [m.name for m in materials.fdm.values()] + [m.name for m in materials.cnc.values()]
        known = ", ".join(names)
        raise InvalidInput(f"{field}: unknown material {name!r}; known: {known}")
    return found.name


def canonical_profile(name: str, field: str = "profile") -> str:
    """The id of the known profile ``name`` names (case-insensitive). Raises InvalidInput
    naming ``field``, the value and the known profile ids."""
    known = list_profiles()
    by_key = {p.lower(): p for p in known}
    found = by_key.get(name.strip().lower())
    if found is None:
        raise InvalidInput(f"{field} must be one of {', '.join(known)}, got {name!r}")
    return found
