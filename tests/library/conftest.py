"""Fixtures for the design library tests: the real models, one benchy check, a scratch library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from library_helpers import MODELS

from fabnet.library.mesh import MeshReport, check_mesh


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def model_facts() -> dict[str, dict[str, object]]:
    """models.json by file name (facts measured with trimesh 5.2)."""
    rows = json.loads((MODELS / "models.json").read_text())
    return {row["file"]: row for row in rows}


@pytest.fixture(scope="session")
def benchy_report() -> MeshReport:
    """The one benchy check of the suite (~2-3 s)."""
    return check_mesh(MODELS / "benchy.stl")


@pytest.fixture()
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty scratch library that ``library_dir()`` points to."""
    root = tmp_path / "designs"
    root.mkdir()
    monkeypatch.setenv("FABNET_DESIGNS_DIR", str(root))
    return root
