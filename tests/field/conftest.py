"""Fixtures for the field tests: fabnet built as a wheel and installed into a fresh venv
(``installed_fabnet``, once per session) and a fresh working folder outside the checkout.

Helpers for test modules live in ``installed_support`` (``run``, ``InstalledFabnet``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from installed_support import CHECKOUT, InstalledFabnet, build_installed


@pytest.fixture(scope="session")
def installed_fabnet(tmp_path_factory: pytest.TempPathFactory) -> InstalledFabnet:
    """fabnet from a wheel of the current checkout (uncommitted work included), in its own
    venv; ``.run(args, cwd)`` runs its ``fabnet`` command, ``.env`` is its environment."""
    root = tmp_path_factory.mktemp("installed")
    assert not root.resolve().is_relative_to(CHECKOUT), f"{root} is inside the checkout"
    return build_installed(root)


@pytest.fixture
def field_dir(tmp_path: Path) -> Path:
    """A fresh, empty working folder that is not inside the checkout."""
    folder = tmp_path / "work"
    folder.mkdir()
    assert not folder.resolve().is_relative_to(CHECKOUT), f"{folder} is inside the checkout"
    return folder
