"""``fabnet designs`` through click's CliRunner, against a scratch library and the real models."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from library_helpers import MODELS, write_design

from fabnet.errors import LicenseError
from fabnet.library.cli import designs


def _run(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(designs, list(args))
    return result.exit_code, result.output, result.exception


def test_add_list_show_credits(library: Path) -> None:
    code, out, _ = _run(
        "add", str(MODELS / "faceshield_frame.stl"), "--slug", "shield", "--name", "Shield",
        "--author", "aon3d", "--license", "MIT", "--version", "R01",
        "--tags", "medical, face-shield", "--source-url", "https://example.org/shield",
        "--library", str(library),
    )  # fmt: skip
    assert code == 0, out
    assert "added shield (MIT) sha256 c42878beed18" in out
    assert "note: merged 4848 duplicate vertices" in out
    code, out, _ = _run("list")
    assert code == 0
    row = [line for line in out.splitlines() if line.startswith("shield")][0]
    assert row.split()[:4] == ["shield", "Shield", "MIT", "1940"]
    assert "182.4 x 218.9 x 3.2 mm" in row
    code, out, _ = _run("show", "shield", "--json")
    data = json.loads(out)
    assert data["sha256"].startswith("c42878beed18")
    assert data["facts"]["triangles"] == 1940 and data["tags"] == ["medical", "face-shield"]


def test_remix_and_credits_with_nc_notice(library: Path) -> None:
    write_design(library, "base", "CC-BY-NC-SA-4.0")
    code, out, _ = _run(
        "remix", "base", "base-short", "--file", str(MODELS / "cube_xyz_20mm.stl"),
        "--name", "Short", "--author", "me", "--library", str(library),
    )  # fmt: skip
    assert code == 0, out
    assert "added base-short (CC-BY-NC-SA-4.0)" in out
    assert "non-commercial: base is CC-BY-NC-SA-4.0" in out
    code, out, _ = _run("credits", "base-short")
    lines = out.splitlines()
    assert lines[0] == "Short v1.0 by me, CC-BY-NC-SA-4.0, no source URL"
    assert lines[1] == (
        "remix of: Design base v1.0 by author of base, CC-BY-NC-SA-4.0, https://example.org/base"
    )
    code, out, _ = _run("show", "base-short")
    assert "non-commercial: base-short is CC-BY-NC-SA-4.0" in out
    assert "lineage:     base-short <- base" in out


def test_remix_with_a_changed_sa_license_is_refused(library: Path) -> None:
    write_design(library, "hook", "CC-BY-SA-4.0")
    code, _, exc = _run(
        "remix", "hook", "hook-mit", "--file", str(MODELS / "cube_xyz_20mm.stl"),
        "--name", "Hook", "--author", "me", "--license", "MIT", "--library", str(library),
    )  # fmt: skip
    assert code != 0
    assert isinstance(exc, LicenseError)
    assert "must keep CC-BY-SA-4.0, not MIT" in str(exc)


def test_check_exit_status_and_reasons(library: Path, tmp_path: Path) -> None:
    code, out, _ = _run("check", str(MODELS / "conveyor_broken_x0.1.stl"))
    assert code == 1
    assert "refused (not_watertight): not watertight: 59 open edges" in out
    code, out, _ = _run("check", str(MODELS / "torture_test_v2.stl"), "--profile", "prusa_mini")
    assert code == 0, out
    assert "ok: the mesh can be sliced" in out
    code, out, _ = _run(
        "check", str(MODELS / "faceshield_frame.stl"), "--profile", "prusa_mini", "--json"
    )
    data = json.loads(out)
    assert code == 1 and data["reason"] == "does_not_fit" and data["ok"] is False
    text = tmp_path / "readme.stl"
    text.write_text("not a mesh")
    code, out, _ = _run("check", str(text), "--json")
    assert code == 1 and json.loads(out)["reason"] == "not_a_mesh"
