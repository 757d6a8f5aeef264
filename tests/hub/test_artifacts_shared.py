"""Stateless artifacts (issue 9): G-code, cache keys, assignments and the token secret are where
every hub process reaches them, so one process's token opens the file on another; a data folder
written before issue 9 keeps working."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fabnet.core.jobs import Quality
from fabnet.errors import InvalidInput, NotFound
from fabnet.hub.artifacts import ArtifactStore, FolderBlobs
from fabnet.hub.designs import DesignCatalog
from fabnet.store import Store
from fabnet.store.artifact_records import ArtifactRecords
from fabnet.store.database import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    yield str(request.getfixturevalue("pg_url"))


@pytest.fixture
def catalog(tmp_path: Path) -> DesignCatalog:
    designs = DesignCatalog(Store(f"sqlite:///{tmp_path / 'designs.db'}"))
    designs.register_library(datetime.now(UTC))
    return designs


def hub_store(db: Database, shared: Path, own: Path) -> ArtifactStore:
    """One hub process's ArtifactStore: the shared database and blob folder, its own folder."""
    return ArtifactStore(own, records=ArtifactRecords(db), blobs=FolderBlobs(shared))


def test_a_token_minted_by_one_hub_process_opens_the_file_on_another(
    db_url: str, tmp_path: Path, catalog: DesignCatalog
) -> None:
    db_a, db_b = Database(db_url), Database(db_url)  # two processes: two engines
    try:
        shared = tmp_path / "shared-gcode"
        one = hub_store(db_a, shared, tmp_path / "one")
        other = hub_store(db_b, shared, tmp_path / "other")
        cube = catalog.resolve("cube-xyz-20mm")
        made = one.produce(cube, "prusa_mini", "PLA", Quality.DRAFT, 1)
        token = one.record_assignment("t1", 1, made)
        assert other.token("t1", 1) == token, "both processes share one secret"
        path = other.open_assignment("t1", 1, token)
        assert path.read_bytes() == made.path.read_bytes()
        assigned = other.assignment("t1", 1)
        assert assigned is not None and assigned.sha256 == made.sha256
        assert assigned.grams == pytest.approx(made.grams)
        with pytest.raises(NotFound):
            other.open_assignment("t1", 2, other.token("t1", 2))  # never assigned
        with pytest.raises(NotFound):
            other.open_assignment("t1", 1, "0" * len(token))
        # the other process finds the cached production and does not slice again
        again = other.produce(cube, "prusa_mini", "PLA", Quality.DRAFT, 1)
        assert again.sha256 == made.sha256 and again.path == made.path
        assert sorted(p.name for p in shared.iterdir()) == [f"{made.sha256}.gcode"]
    finally:
        db_a.dispose()
        db_b.dispose()


def test_processes_racing_for_the_secret_all_get_the_same_one(db_url: str) -> None:
    db = Database(db_url)
    try:
        records = [ArtifactRecords(db) for _ in range(6)]
        found: list[str] = []
        lock = threading.Lock()

        def ask(r: ArtifactRecords) -> None:
            value = r.secret("race", lambda: uuid.uuid4().hex)
            with lock:
                found.append(value)

        threads = [threading.Thread(target=ask, args=(r,)) for r in records]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(found) == 6 and len(set(found)) == 1
    finally:
        db.dispose()


def test_a_data_folder_from_before_issue_9_keeps_its_tokens_and_assignments(
    tmp_path: Path,
) -> None:
    root = tmp_path / "artifacts"
    (root / "gcode").mkdir(parents=True)
    (root / "assignments").mkdir()
    (root / "token.secret").write_text("ab" * 32)
    (root / "gcode" / "0123abcd.gcode").write_text("G28\n")
    old = {"path": "0123abcd.gcode", "sha256": "cd" * 32, "grams": 1.5, "time_s": 60.0}
    (root / "assignments" / "t9-2.json").write_text(json.dumps(old))
    store = ArtifactStore(root)
    expected = hmac.new(bytes.fromhex("ab" * 32), b"t9:2", hashlib.sha256).hexdigest()
    assert store.token("t9", 2) == expected, "the old secret was adopted"
    assert store.open_assignment("t9", 2, expected).read_text() == "G28\n"
    assigned = store.assignment("t9", 2)
    assert assigned is not None and assigned.sha256 == "cd" * 32 and assigned.grams == 1.5
    store.close()
    (root / "token.secret").unlink()  # adopted once: the database keeps it
    assert ArtifactStore(root).token("t9", 2) == expected


def test_a_configured_secret_overrides_the_database(tmp_path: Path) -> None:
    a = ArtifactStore(tmp_path / "a", token_secret="configured")
    b = ArtifactStore(tmp_path / "b", token_secret="configured")
    c = ArtifactStore(tmp_path / "c")
    assert a.token("t", 1) == b.token("t", 1) != c.token("t", 1)


def test_folder_blobs_refuse_a_bad_name_or_content(tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path / "b")
    with pytest.raises(InvalidInput, match="sha256"):
        blobs.put("../../etc/passwd", b"x")
    with pytest.raises(InvalidInput, match="does not have sha256"):
        blobs.put("00" * 32, b"x")
    with pytest.raises(NotFound):
        blobs.local_path("00" * 32)
