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
