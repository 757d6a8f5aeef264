"""What the hub keeps on disk is its owner's only (issue 13, item 13): the SQLite file and its
folder, the artifact folders and the token secret."""

from __future__ import annotations

from pathlib import Path

from fabnet.hub.artifacts import ArtifactStore
from fabnet.store import Store


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_sqlite_file_and_folder_are_private(tmp_path: Path) -> None:
    db = tmp_path / "var" / "fabnet.db"
    store = Store(f"sqlite:///{db}")
    try:
        store.catalog.list_machines()
    finally:
        store.close()
    assert mode(db) == 0o600 and mode(db.parent) == 0o700
    for extra in db.parent.iterdir():
        assert mode(extra) & 0o077 == 0, extra


def test_a_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.touch()
    db.chmod(0o644)
    Store(f"sqlite:///{db}").close()
    assert mode(db) == 0o600


def test_artifact_folders_and_token_secret_are_private(tmp_path: Path) -> None:
    ArtifactStore(tmp_path / "artifacts")
    root = tmp_path / "artifacts"
    assert mode(root / "artifacts.db") == 0o600  # the token secret lives in it (issue 9)
    for folder in (root, root / "gcode"):
        assert mode(folder) == 0o700, folder
