"""The data fabnet ships: the seeded design library and the firmware profiles.

The repository keeps them at its root (``designs/``, ``firmware_profiles/``); pyproject.toml
maps them into the wheel as ``fabnet/seed/designs`` and ``fabnet/seed/firmware_profiles``.
They are read-only: a user's designs live in a hub's data folder, never here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fabnet.errors import ConfigError

DESIGNS = "designs"
PROFILES = "firmware_profiles"


def shipped_dir(name: str) -> Path:
    """The folder of shipped data ``name`` (``DESIGNS`` or ``PROFILES``).

    In an installed wheel it is ``fabnet/seed/<name>`` beside this module. In a source
    checkout (plain or editable install) it is ``<checkout>/<name>``: setuptools' editable
    finder cannot import a data-only sub-package mapped elsewhere, so the package path is
    tried first and the checkout second. Raises ConfigError naming both when neither exists
    (a wheel built without its package data).
    """
    packaged = Path(str(resources.files(__name__))) / name
    if packaged.is_dir():
        return packaged
    root = Path(__file__).resolve().parents[2]
    checkout = root / name
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    raise ConfigError(f"fabnet's shipped {name} are missing: neither {packaged} nor {checkout}")
