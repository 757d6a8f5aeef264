"""Task G-code: produced once per machine profile and slicer, checked, served by token."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fabnet.core.jobs import Quality
from fabnet.errors import NotFound
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.store import Store


@pytest.fixture
def catalog(tmp_path: Path) -> DesignCatalog:
    designs = DesignCatalog(Store(f"sqlite:///{tmp_path / 'hub.db'}"))
    designs.register_library(datetime.now(UTC))
    return designs


def test_machine_slicer_overrides_the_hub_default(tmp_path: Path, catalog: DesignCatalog) -> None:
    artifacts = ArtifactStore(tmp_path / "a", "builtin", {"ada/mk3s-1": "prusaslicer"})
    cube = catalog.resolve("cube-xyz-20mm")
    ours = artifacts.produce(cube, "prusa_mk3s", "PLA", Quality.NORMAL, 1, "bruno/mk3s-2")
    theirs = artifacts.produce(cube, "prusa_mk3s", "PLA", Quality.NORMAL, 1, "ada/mk3s-1")
    assert "PrusaSlicer" not in ours.path.read_text()[:2000]
    assert "PrusaSlicer" in theirs.path.read_text()
    again = artifacts.produce(cube, "prusa_mk3s", "PLA", Quality.NORMAL, 1, "carl/mk3s-9")
    assert again.path == ours.path, "the same G-code is produced once and shared"
    assert 3.0 < ours.grams < 6.0 and ours.sha256 != theirs.sha256


def test_tokens_open_only_their_own_assignment(tmp_path: Path, catalog: DesignCatalog) -> None:
    artifacts = ArtifactStore(tmp_path / "a")
    cube = catalog.resolve("cube-xyz-20mm")
    made = artifacts.produce(cube, "prusa_mini", "PETG", Quality.DRAFT, 1)
    token = artifacts.record_assignment("t1", 1, made)
    assert artifacts.open_assignment("t1", 1, token) == made.path
    with pytest.raises(NotFound):
        artifacts.open_assignment("t1", 2, token)  # another offer of the same task
    with pytest.raises(NotFound):
        artifacts.open_assignment("t1", 1, "0" * len(token))
    # the secret survives a restart, so assignments made before it still open
    assert ArtifactStore(tmp_path / "a").open_assignment("t1", 1, token) == made.path
