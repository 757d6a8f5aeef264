"""The external slicers' pure parts: settings mapping, placement, estimates, clean-up."""

from __future__ import annotations

import pytest

from fabnet.errors import InvalidInput
from fabnet.profiles import FdmMaterial, FdmProfile, load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.curaengine import build_settings, parse_estimate, with_final_header
from fabnet.slicing.external import SlicerEstimate, copy_offsets, drop_null_extrusions
from fabnet.slicing.prusaslicer import build_config
from fabnet.slicing.prusaslicer import parse_estimate as prusa_estimate


def fdm(profile_id: str, material_name: str = "PLA") -> tuple[FdmProfile, FdmMaterial]:
    profile = load_profile(profile_id)
    material = load_materials().get(material_name)
    assert isinstance(profile, FdmProfile) and isinstance(material, FdmMaterial)
    return profile, material


def test_prusaslicer_config_maps_profile_material_and_settings() -> None:
    profile, material = fdm("voron24_350", "PETG")
    config = build_config(profile, material, SliceSettings(infill_percent=35, walls=3))
    assert config["bed_shape"] == "0x0,350x0,350x350,0x350"
    assert config["gcode_flavor"] == "marlin2"  # PrusaSlicer 2.5 has no klipper flavour
    assert config["fill_density"] == "35%"
    assert config["perimeters"] == "3"
    assert config["first_layer_temperature"] == "230" and config["temperature"] == "240"
    assert config["retract_speed"] == "40"
    assert (
        "{" not in config["start_gcode"]
        and "PRINT_START BED=85 EXTRUDER=230" in config["start_gcode"]
    )
    assert "\n" not in config["start_gcode"]  # newlines escaped for config.ini


def test_curaengine_settings_derive_what_cura_would() -> None:
    profile, material = fdm("creality_ender3")
    values = build_settings(profile, material, SliceSettings(infill_percent=20, walls=2))
    assert values["infill_line_distance"] == "2.25"  # 0.45 mm lines * 100 / 20 %
    assert values["wall_line_count"] == "2" and values["wall_thickness"] == "0.9"
    assert values["machine_width"] == "220" and values["machine_depth"] == "220"
    assert values["retraction_speed"] == "25"  # profile's 45 mm/s capped by max E feed 25
    assert values["relative_extrusion"] == "true"
    assert values["machine_end_gcode"].startswith("M83\n")


def test_copies_are_centred_and_refused_when_they_do_not_fit() -> None:
    profile, _ = fdm("prusa_mk3s")
    offsets = copy_offsets((20, 20), 4, profile)
    assert sorted(offsets) == [(-13, -13), (-13, 13), (13, -13), (13, 13)]
    with pytest.raises(InvalidInput, match="does not fit"):
        copy_offsets((260, 20), 1, profile)
    with pytest.raises(InvalidInput, match="at most"):
        copy_offsets((100, 100), 5, profile)


def test_estimates_parse_and_round_trip_through_notes() -> None:
    gcode = (
        "; filament used [mm] = 1533.91\n; filament used [g] = 4.57\n"
        "; estimated printing time (normal mode) = 1h 2m 3s\n"
    )
    estimate = prusa_estimate(gcode)
    assert estimate == SlicerEstimate(time_s=3723, filament_mm=1533.91, grams=4.57)
    assert SlicerEstimate.from_notes(estimate.as_notes()) == estimate
    profile, material = fdm("prusa_mk3s")
    cura = parse_estimate("Print time (s): 2691\nFilament (mm^3): 4616\n", profile, material)
    assert cura.time_s == 2691 and cura.grams == pytest.approx(4.616 * 1.24)
    assert cura.filament_mm == pytest.approx(4616 / 2.405, rel=1e-3)


def test_cura_placeholder_header_is_replaced() -> None:
    gcode = ";FLAVOR:Marlin\n;TIME:6666\n\n;Generated\nG1 X1\n"
    stderr = "Gcode header after slicing:\n;FLAVOR:Marlin\n;TIME:42\nEnd of gcode header.\n"
    assert with_final_header(gcode, stderr) == ";FLAVOR:Marlin\n;TIME:42\n\n;Generated\nG1 X1\n"


def test_null_extrusions_in_place_are_dropped_and_nothing_else() -> None:
    gcode = "G90\nG1 X1 Y2 E.5\nG1 X1 Y2 E.00002\nG1 X1 Y2 E.01\nG1 X3 Y2 E.0001\nG91\nG1 X0 Y0 E.0001\n"
    cleaned, dropped = drop_null_extrusions(gcode)
    assert dropped == 1
    assert cleaned == gcode.replace("G1 X1 Y2 E.00002\n", "")
