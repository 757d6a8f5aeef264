"""Choosing a slicer by name and by profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabnet.errors import InvalidInput, ToolMissing
from fabnet.profiles import load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.registry import available_slicers, get_slicer, slicer_for, slicer_name_for


def test_external_slicers_by_name() -> None:
    assert get_slicer("prusaslicer").name == "prusaslicer"
    assert get_slicer(" CuraEngine ").name == "curaengine"


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(InvalidInput, match="builtin, prusaslicer, curaengine, cnc; got 'slic3r'"):
        get_slicer("slic3r")


def test_cnc_profiles_always_get_the_cnc_generator() -> None:
    cnc = load_profile("shapeoko3")
    assert slicer_name_for(cnc) == "cnc"
    assert slicer_name_for(cnc, "prusaslicer") == "cnc"
    printer = load_profile("prusa_mk3s")
    assert slicer_name_for(printer) == "builtin"
    assert slicer_name_for(printer, "curaengine") == "curaengine"
    with pytest.raises(InvalidInput, match="cannot slice for FDM"):
        slicer_name_for(printer, "cnc")


def test_installed_externals_are_reported(tmp_path: Path) -> None:
    here = available_slicers()
    assert here["prusaslicer"] and here["curaengine"], (
        "install the externals: apt-get install prusa-slicer cura-engine, or run `make test`"
    )
    nowhere = available_slicers(search_path=str(tmp_path))
    assert nowhere == {"builtin": True, "prusaslicer": False, "curaengine": False, "cnc": True}


def test_a_chosen_external_that_is_missing_fails_on_slice(tmp_path: Path) -> None:
    import trimesh

    printer = load_profile("prusa_mk3s")
    slicer = slicer_for(printer, "prusaslicer", search_path=str(tmp_path))
    with pytest.raises(ToolMissing, match="prusa-slicer"):
        slicer.slice(
            trimesh.creation.box((10, 10, 10)),
            printer,
            load_materials().get("PLA"),
            SliceSettings(),
        )


def test_builtins_resolve() -> None:
    assert get_slicer("builtin").name == "builtin"
    assert get_slicer("cnc").name == "cnc"
