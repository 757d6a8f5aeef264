"""Profiles load from the real files, and every mistake in a profile names its key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabnet.errors import ConfigError, NotFound
from fabnet.profiles import (
    CncProfile,
    FdmProfile,
    MachineKind,
    list_profiles,
    load_materials,
    load_profile,
    profiles_dir,
)
from fabnet.seed import PROFILES, shipped_dir


def test_every_shipped_profile_loads() -> None:
    ids = list_profiles()
    assert {"prusa_mk3s", "creality_ender3", "prusa_mini", "voron24_350", "shapeoko3"} <= set(ids)
    for profile_id in ids:
        profile = load_profile(profile_id)
        assert profile.id == profile_id
        assert profile.forbidden, f"{profile_id} lists no forbidden commands"


def test_fdm_and_cnc_profiles_carry_their_limits() -> None:
    mk3s = load_profile("prusa_mk3s")
    assert isinstance(mk3s, FdmProfile) and mk3s.kind is MachineKind.FDM
    assert (mk3s.volume.x_mm, mk3s.volume.y_mm, mk3s.volume.z_mm) == (250, 210, 210)
    assert mk3s.max_hotend_c == 300 and "M500" in mk3s.forbidden
    cnc = load_profile("shapeoko3")
    assert isinstance(cnc, CncProfile) and cnc.kind is MachineKind.CNC
    assert cnc.tool().diameter_mm == pytest.approx(6.35)
    assert cnc.spindle_rpm_min < cnc.spindle_rpm_max


def test_materials_table_has_the_required_materials() -> None:
    table = load_materials()
    for name in ("PLA", "PETG", "ABS", "TPU", "plywood", "MDF", "acrylic", "aluminium"):
        assert table.get(name).density_g_cm3 > 0
    with pytest.raises(KeyError, match="unknown material 'unobtainium'"):
        table.get("unobtainium")


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (profiles_dir() / "prusa_mk3s.toml").read_text()
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "nozzle_mm = 0.4", "nozzle_mm = 0.4\nnozle_temp = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml: unknown key\(s\) extruder\.nozle_temp"):
        load_profile(path)


def test_out_of_range_value_names_range_and_value(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "max_hotend_c = 300", "max_hotend_c = 900")
    with pytest.raises(ConfigError, match=r"extruder\.max_hotend_c must be 150\.\.500, got 900"):
        load_profile(path)


def test_wrong_type_and_missing_key(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "nozzle_mm = 0.4", 'nozzle_mm = "0.4"')
    with pytest.raises(ConfigError, match="extruder.nozzle_mm must be a number"):
        load_profile(path)
    path = _copy_with(tmp_path, "max_bed_c = 120", "")
    with pytest.raises(ConfigError, match="missing key extruder.max_bed_c"):
        load_profile(path)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match="known: .*prusa_mk3s"):
        load_profile("makerbot_replicator")


def test_profiles_come_from_the_shipped_folder_or_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FABNET_PROFILES_DIR", raising=False)
    assert profiles_dir() == shipped_dir(PROFILES)
    own = tmp_path / "profiles"
    own.mkdir()
    (own / "mine.toml").write_text((shipped_dir(PROFILES) / "prusa_mk3s.toml").read_text())
    monkeypatch.setenv("FABNET_PROFILES_DIR", str(own))
    assert profiles_dir() == own and list_profiles() == ["mine"]


def test_thermal_and_pause_keys_are_optional_and_range_checked(tmp_path: Path) -> None:
    bare = _copy_with(_folder(tmp_path, "bare"), "thermal_margin_c = 15\nthermal_hold_s = 60\n", "")
    bare.write_text(bare.read_text().replace("[pause]\nlift_mm = 5\n", ""))
    profile = load_profile(bare)
    assert isinstance(profile, FdmProfile)
    assert (profile.thermal_margin_c, profile.thermal_hold_s, profile.pause_lift_mm) == (15, 60, 5)
    assert profile.park_xy_mm == (10, 200), "Marlin's park point: X min + 10, Y max - 10"
    set_park = _copy_with(
        _folder(tmp_path, "set_park"), "lift_mm = 5", "lift_mm = 2\npark_x_mm = 0\npark_y_mm = 210"
    )
    parked = load_profile(set_park)
    assert isinstance(parked, FdmProfile) and parked.park_xy_mm == (0, 210)
    outside = _copy_with(
        _folder(tmp_path, "outside"), "lift_mm = 5", "lift_mm = 5\npark_y_mm = 211"
    )
    with pytest.raises(ConfigError, match=r"pause\.park_y_mm must be 0\.\.210, got 211"):
        load_profile(outside)
    hold = _copy_with(_folder(tmp_path, "hold"), "thermal_hold_s = 60", "thermal_hold_s = 1")
    with pytest.raises(ConfigError, match=r"extruder\.thermal_hold_s must be 5\.\.600, got 1"):
        load_profile(hold)


def _folder(tmp_path: Path, name: str) -> Path:
    """A folder of its own per copy: profiles are cached by path."""
    (tmp_path / name).mkdir()
    return tmp_path / name
