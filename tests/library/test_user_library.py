"""A user's library lives in a hub's data folder, in front of the seeded library fabnet ships:
``designs add``/``remix`` need ``--config`` or ``--library`` and never write the seeded one."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trimesh
from click.testing import CliRunner
from library_helpers import MODELS

from fabnet.errors import Conflict, InvalidInput
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService
from fabnet.library.catalog import add_design
from fabnet.library.cli import designs
from fabnet.library.design import library_dir, list_library, load_design
from fabnet.library.design_toml import DesignRecord
from fabnet.seed import DESIGNS, shipped_dir
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.app import WebSettings

SECRET = "Zq8v-3kLw9xT2pRm7nB4yC6dHf7Kp2Lx"
SEEDED = "cube-xyz-20mm"


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path, with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def seeded_untouched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The real seeded library; the test fails if anything in it changed."""
    monkeypatch.delenv("FABNET_DESIGNS_DIR", raising=False)
    root = shipped_dir(DESIGNS)
    before = _snapshot(root)
    yield root
    assert _snapshot(root) == before, f"the seeded library {root} was written to"


def _hub_toml(folder: Path) -> Path:
    """A hub.toml whose relative data_dir is taken against its own folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hub.toml"
    path.write_text(
        f'[hub]\ndata_dir = "var/hub"\n[broker]\npassword = "{SECRET}"\n'
        f'[http]\napi_token = "{SECRET}"\n'
    )
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(designs, list(args))
    return result.exit_code, result.output


def _add_args(slug: str) -> list[str]:
    return [
        "add", str(MODELS / "extruder_idler.stl"), "--slug", slug, "--name", "Idler",
        "--author", "me", "--license", "AGPL-3.0-only",
    ]  # fmt: skip


def test_the_seeded_library_is_the_shipped_one(seeded_untouched: Path) -> None:
    assert library_dir() == seeded_untouched
    assert (seeded_untouched / SEEDED / "design.toml").is_file()


def test_add_without_a_library_is_refused(seeded_untouched: Path) -> None:
    code, out = _run(*_add_args("idler"))
    assert code == 2
    assert "no library to add to: pass --config hub.toml" in out
    record = DesignRecord(name="Idler", author="me", license="MIT", version="1", mesh="")
    with pytest.raises(InvalidInput, match="no library folder to add it to"):
        add_design(MODELS / "extruder_idler.stl", "idler", record, None)
    assert not (seeded_untouched / "idler").exists()


def test_add_with_config_lands_in_the_hub_data_folder(
    seeded_untouched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _hub_toml(tmp_path / "site")
    monkeypatch.chdir(tmp_path)  # the data folder follows the file, not the working folder
    code, out = _run(*_add_args("idler"), "--config", str(config))
    assert code == 0, out
    user = tmp_path / "site" / "var" / "hub" / "designs"
    assert (user / "idler" / "extruder_idler.stl").is_file()
    code, out = _run("list", "--config", str(config))
    slugs = {line.split()[0] for line in out.splitlines()[1:]}
    assert code == 0 and {"idler", SEEDED, "3dbenchy"} <= slugs
    code, out = _run("show", "idler", "--config", str(config))
    assert code == 0 and str(user / "idler") in out
    code, out = _run("show", "idler")  # without the hub's library it is unknown
    assert code != 0


def test_a_user_remix_of_a_seeded_design_credits_it(seeded_untouched: Path, tmp_path: Path) -> None:
    user = tmp_path / "mine"
    code, out = _run(
        "remix", SEEDED, "my-cube", "--file", str(MODELS / "cube_xyz_20mm.stl"),
        "--name", "My cube", "--author", "me", "--library", str(user),
    )  # fmt: skip
    assert code == 0, out
    code, out = _run("credits", "my-cube", "--library", str(user))
    assert code == 0 and out.splitlines()[1].startswith("remix of: ")
    assert [d.slug for d in list_library(user)].count(SEEDED) == 1
    assert load_design(SEEDED, user).directory == seeded_untouched / SEEDED


def test_a_seeded_slug_cannot_be_added_again(seeded_untouched: Path, tmp_path: Path) -> None:
    record = DesignRecord(name="Cube", author="me", license="MIT", version="1", mesh="")
    with pytest.raises(Conflict, match=f"design '{SEEDED}' already exists"):
        add_design(MODELS / "cube_xyz_20mm.stl", SEEDED, record, tmp_path / "mine")


def test_both_options_at_once_are_refused(tmp_path: Path) -> None:
    config = _hub_toml(tmp_path)
    code, out = _run(*_add_args("x"), "--config", str(config), "--library", str(tmp_path))
    assert code == 2 and "not both" in out


def test_a_hub_catalog_registers_both_and_uploads_go_to_its_data_folder(
    seeded_untouched: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "hub"
    block = tmp_path / "block.stl"  # a mesh of its own: the catalog keys designs by content
    trimesh.creation.box(extents=(30.0, 20.0, 10.0)).export(block)
    record = DesignRecord(name="Block", author="me", license="MIT", version="1", mesh="")
    add_design(block, "block", record, data_dir / "designs")
    catalog = DesignCatalog.for_hub(Store(f"sqlite:///{tmp_path / 'hub.db'}"), data_dir)
    assert catalog.library_dir == data_dir / "designs"
    catalog.register_library(datetime.now(UTC))
    slugs = {entry.design.slug for entry in catalog.entries()}
    assert {"block", SEEDED, "3dbenchy"} <= slugs


def test_an_api_upload_goes_to_the_hub_data_folder(seeded_untouched: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    catalog = DesignCatalog.for_hub(store, data_dir)
    service = HubService(store, catalog, cancel_tasks=lambda job_id, reason: None)
    app = create_app(service, ArtifactStore(tmp_path / "artifacts"), SECRET,
                     settings=WebSettings(data_dir=data_dir))  # fmt: skip
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {SECRET}"
    form = {"slug": "uploaded", "name": "Up", "author": "me", "license": "MIT",
            "file": (io.BytesIO((MODELS / "cube_xyz_20mm.stl").read_bytes()), "cube.stl")}  # fmt: skip
    answer = client.post("/api/v1/designs", data=form, content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert (data_dir / "designs" / "uploaded" / "cube.stl").is_file()
