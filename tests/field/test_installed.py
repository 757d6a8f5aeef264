"""The installed ``fabnet`` command, run from folders outside the checkout, finds the profiles
and designs it ships, slices a seeded design, and adds a user's design to a hub's data folder,
never to the checkout or the installed package; the wheel carries every module and data file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from installed_support import CHECKOUT, InstalledFabnet

MODELS = CHECKOUT / "tests" / "data" / "models"
SEED = "fabnet/seed"
DATA_FOLDERS = ("designs", "firmware_profiles")


def _wheel_path(rel: str) -> str | None:
    """Where the source file ``rel`` (relative to the checkout) belongs in the wheel."""
    top = rel.split("/", 1)[0]
    if top == "fabnet":
        return rel
    if top in DATA_FOLDERS:
        return f"{SEED}/{rel}"
    return None


def test_the_wheel_carries_every_module_and_data_file(installed_fabnet: InstalledFabnet) -> None:
    source = installed_fabnet.source
    expected = {
        _wheel_path(p.relative_to(source).as_posix())
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } - {None}
    held = set(installed_fabnet.wheel_files())
    missing = sorted(str(p) for p in expected - held)
    assert not missing, f"the wheel lacks {len(missing)} files of the checkout: {missing[:20]}"
    meshes = [n for n in held if n.startswith(f"{SEED}/designs/") and n.endswith(".stl")]
    profiles = [n for n in held if n.startswith(f"{SEED}/firmware_profiles/")]
    assert len(meshes) >= 7 and f"{SEED}/designs/3dbenchy/design.toml" in held
    assert f"{SEED}/firmware_profiles/prusa_mk3s.toml" in profiles
    assert f"{SEED}/firmware_profiles/materials.toml" in profiles


def test_shipped_profiles_and_designs_list_from_anywhere(
    installed_fabnet: InstalledFabnet, field_dir: Path
) -> None:
    out = installed_fabnet.run(["profiles", "list"], field_dir).stdout
    shipped = {p.stem for p in (installed_fabnet.source / "firmware_profiles").glob("*.toml")}
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == shipped - {"materials"}
    out = installed_fabnet.run(["designs", "list"], field_dir).stdout
    seeded = {p.parent.name for p in (installed_fabnet.source / "designs").glob("*/design.toml")}
    assert {line.split()[0] for line in out.splitlines()[1:]} == seeded
    shown = installed_fabnet.run(["designs", "show", "3dbenchy"], field_dir).stdout
    assert f"{installed_fabnet.site_packages / SEED / 'designs' / '3dbenchy'}" in shown


def test_slice_a_seeded_design(installed_fabnet: InstalledFabnet, field_dir: Path) -> None:
    args = ["slice", "cube-xyz-20mm", "--profile", "prusa_mk3s", "--material", "PLA"]
    done = installed_fabnet.run([*args, "-o", "x.gcode"], field_dir, timeout=120)
    assert "wrote x.gcode" in done.stdout
    gcode = (field_dir / "x.gcode").read_text()
    assert "G1" in gcode and len(gcode.splitlines()) > 1000


def _git_status(*paths: str) -> str:
    return subprocess.run(
        ["git", "-C", str(CHECKOUT), "status", "--porcelain", "--ignored", "--", *paths],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_designs_add_lands_in_the_hub_data_folder(
    installed_fabnet: InstalledFabnet, field_dir: Path
) -> None:
    site = field_dir / "site"
    site.mkdir()
    installed_fabnet.run(["init", "hub"], site)
    elsewhere = field_dir / "elsewhere"  # relative paths in hub.toml follow the file, not cwd
    elsewhere.mkdir()
    mesh = shutil.copy(MODELS / "extruder_idler.stl", elsewhere / "idler.stl")
    add = ["designs", "add", mesh, "--slug", "my-idler", "--name", "My idler",
           "--author", "me", "--license", "AGPL-3.0-only"]  # fmt: skip
    before = _git_status(*DATA_FOLDERS)
    refused = installed_fabnet.run(add, elsewhere, check=False)
    assert refused.returncode == 2 and "pass --config hub.toml" in refused.stderr
    installed_fabnet.run([*add, "--config", site / "hub.toml"], elsewhere)
    landed = site / "var" / "hub" / "designs" / "my-idler"
    assert (landed / "idler.stl").read_bytes() == (MODELS / "extruder_idler.stl").read_bytes()
    assert (landed / "design.toml").is_file()
    assert _git_status(*DATA_FOLDERS) == before, "the checkout's designs/ changed"
    assert not (CHECKOUT / "designs" / "my-idler").exists()
    assert not (installed_fabnet.site_packages / SEED / "designs" / "my-idler").exists()
    listed = installed_fabnet.run(["designs", "list", "--config", site / "hub.toml"], elsewhere)
    slugs = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert {"my-idler", "cube-xyz-20mm", "3dbenchy"} <= slugs
