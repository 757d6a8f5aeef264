"""Task artifacts: the G-code for one task on the machine it was assigned to, servable by any
hub process.

G-code is produced once per (design, profile, material, quality, parts, slicer) and kept
content-addressed (by sha256) in an ``ArtifactBlobs`` store every hub process reaches — a
folder, possibly shared. Which file a production key made, which file each (task, offer) was
assigned, and the secret that signs one-task tokens live in the database
(``fabnet.store.artifact_records``), so a token minted by one hub process opens the file on
another, and a restart loses nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from fabnet.core.jobs import Quality
from fabnet.core.states import LEASED_TASK_STATES
from fabnet.core.tasks import TaskSnapshot
from fabnet.errors import InvalidInput, NotFound, SafetyError
from fabnet.gcode import analyse, check
from fabnet.hub.designs import DesignEntry
from fabnet.library.mesh import load_mesh, prepare_mesh
from fabnet.profiles import FdmMaterial, load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.registry import get_slicer, slicer_name_for
from fabnet.store.artifact_records import ArtifactRecords, AssignedFile, Produced
from fabnet.store.database import Database

log = logging.getLogger(__name__)

TOKEN_SECRET = "task-token"  # name of the one-task token secret in the database
LEGACY_SECRET_FILE = "token.secret"  # where hubs before issue 9 kept it: adopted if present
LEGACY_ASSIGNMENTS = "assignments"  # per-(task, offer) JSON records before issue 9
BLOB_FOLDER = "gcode"
_SHA256_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Artifact:
    """A produced G-code file: where it is, its size (bytes), sha256, and analysed figures."""

    path: Path
    size_bytes: int
    sha256: str
    grams: float
    time_s: float


@dataclass(frozen=True)
class Assignment:
    """What the hub assigned for one (task, offer): the file's sha256 and its analysed grams
    and seconds (None in records from before they were kept)."""

    sha256: str
    grams: float | None
    time_s: float | None


class ArtifactBlobs(Protocol):
    """G-code files by sha256 (64 lowercase hex), where every hub process reaches them."""

    def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` (whose sha256 is ``sha256``); storing it again changes nothing."""

    def exists(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO:
        """The file for reading; NotFound if it is not stored."""

    def local_path(self, sha256: str) -> Path:
        """A local file with the content (an object store would fetch it into a cache);
        NotFound if it is not stored."""


class FolderBlobs:
    """``ArtifactBlobs`` on a folder, ``<root>/<sha256>.gcode``. Several processes (and hosts,
    on a shared file system) may write at once: each writes a file of its own and renames it
    into place, so a reader sees a whole file or none."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _SHA256_CHARS:
            raise InvalidInput(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
        return self.root / f"{sha256}.gcode"

    def put(self, sha256: str, data: bytes) -> None:
        path = self._path(sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise InvalidInput(f"data does not have sha256 {sha256}")
        if path.exists():
            return
        tmp = path.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def open(self, sha256: str) -> BinaryIO:
        return self.local_path(sha256).open("rb")

    def local_path(self, sha256: str) -> Path:
        path = self._path(sha256)
        if not path.exists():
            raise NotFound(f"no G-code with sha256 {sha256}")
        return path


class ArtifactStore:
    """Produces, caches and authorises task G-code.

    ``records`` holds the cache keys, assignments and token secret (default: a SQLite file in
    ``root``, for one process); ``blobs`` the files (default: ``root/gcode``). Hub processes
    that share the work must share both. ``token_secret`` (from config) overrides the
    database's secret.
    """

    def __init__(
        self,
        root: Path,
        slicer: str = "builtin",
        machine_slicers: dict[str, str] | None = None,
        *,
        records: ArtifactRecords | None = None,
        blobs: ArtifactBlobs | None = None,
        token_secret: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own_db: Database | None = None
        if records is None:
            self._own_db = Database(f"sqlite:///{root / 'artifacts.db'}")
            records = ArtifactRecords(self._own_db)
        self._records = records
        self._blobs = blobs if blobs is not None else FolderBlobs(root / BLOB_FOLDER)
        self._slicer = slicer
        self._machine_slicers = dict(machine_slicers or {})
        self._clock = clock
        if token_secret:
            self._secret = token_secret.encode()
        else:
            hex_secret = records.secret(TOKEN_SECRET, lambda: _adopt_or_make_secret(root))
            self._secret = bytes.fromhex(hex_secret)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def blobs(self) -> ArtifactBlobs:
        return self._blobs

    def close(self) -> None:
        """Release the database this store opened itself (none when ``records`` was given)."""
        if self._own_db is not None:
            self._own_db.dispose()

    def produce(
        self,
        entry: DesignEntry,
        profile_id: str,
        material_name: str,
        quality: Quality,
        parts: int,
        machine_id: str = "",
    ) -> Artifact:
        """G-code for ``parts`` copies of ``entry`` on ``profile_id``; checked against the profile.

        The slicer is the one configured for ``machine_id``, else the hub's (CNC: toolpaths).
        Produced once per inputs, across all hub processes sharing the records and blobs (two
        producing the same at the same moment both slice; the first record stands).

        Raises MeshError when the design cannot be sliced for that machine and SafetyError when
        the produced G-code would exceed the profile's limits (it is then never served)."""
        profile = load_profile(profile_id)
        preferred = self._machine_slicers.get(machine_id, self._slicer)
        slicer_name = slicer_name_for(profile, preferred)
        key_text = f"{entry.design_id}|{profile_id}|{material_name}|{quality}|{parts}|{slicer_name}"
        key = hashlib.sha256(key_text.encode()).hexdigest()
        with self._lock_for(key):
            made = self._records.produced(key)
            if made is None or not self._blobs.exists(made.sha256):
                made = self._slice(
                    key, entry, profile_id, material_name, quality, parts, slicer_name
                )
        path = self._blobs.local_path(made.sha256)
        return Artifact(path, made.size_bytes, made.sha256, made.grams, made.time_s)

    def _slice(
        self,
        key: str,
        entry: DesignEntry,
        profile_id: str,
        material_name: str,
        quality: Quality,
        parts: int,
        slicer_name: str,
    ) -> Produced:
        profile = load_profile(profile_id)
        material = load_materials().get(material_name)
        prepared = prepare_mesh(load_mesh(entry.design.mesh_path), profile)
        settings = SliceSettings(layer_height_mm=quality.layer_height_mm, quantity=parts)
        result = get_slicer(slicer_name).slice(prepared.mesh, profile, material, settings)
        violations = check(result.gcode, profile)
        if violations:
            first = violations[0]
            raise SafetyError(
                f"G-code for {entry.design.slug} on {profile_id} fails the safety check: "
                f"{len(violations)} violations, first at line {first.line_no}: {first.message}",
                violations,
            )
        # CNC stock is accounted by the job, not the toolpath: the analyser weighs filament only
        filament = material if isinstance(material, FdmMaterial) else None
        analysis = analyse(result.gcode, profile, filament)
        data = result.gcode.encode()
        sha256 = hashlib.sha256(data).hexdigest()
        self._blobs.put(sha256, data)  # the file first: a record always names a stored file
        summary = f"{entry.design.slug} on {profile_id} in {material_name}"
        made = Produced(key, sha256, len(data), analysis.grams, analysis.time_s, summary)
        log.info("produced %s (%d bytes) for %s", sha256[:12], len(data), summary)
        return self._records.add_produced(made, self._clock())

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def record_assignment(self, task_id: str, offer_no: int, artifact: Artifact) -> str:
        """Remember which file (task, offer) may fetch and return its one-task token."""
        file = AssignedFile(artifact.sha256, artifact.size_bytes, artifact.grams, artifact.time_s)
        self._records.assign(task_id, offer_no, file, self._clock())
        return self.token(task_id, offer_no)

    def assignment(self, task_id: str, offer_no: int) -> Assignment | None:
        """The record of what (task, offer) was assigned, None if no G-code was assigned."""
        found = self._records.assigned(task_id, offer_no)
        if found is not None:
            return Assignment(found.sha256, found.grams, found.time_s)
        legacy = self._legacy_record(task_id, offer_no)
        if legacy is None:
            return None
        return Assignment(str(legacy["sha256"]), legacy.get("grams"), legacy.get("time_s"))

    def token(self, task_id: str, offer_no: int) -> str:
        message = f"{task_id}:{offer_no}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def open_assignment(self, task_id: str, offer_no: int, token: str) -> Path:
        """The file for (task, offer) if ``token`` is its token; NotFound otherwise (a wrong
        token and an unknown assignment look the same to the caller)."""
        if not hmac.compare_digest(self.token(task_id, offer_no), token):
            raise NotFound(f"no artifact for task {task_id} offer {offer_no} with that token")
        found = self._records.assigned(task_id, offer_no)
        if found is not None:
            return self._blobs.local_path(found.sha256)
        legacy = self._legacy_record(task_id, offer_no)
        if legacy is None:
            raise NotFound(f"no artifact for task {task_id} offer {offer_no}")
        return self._root / BLOB_FOLDER / Path(str(legacy["path"])).name

    def _legacy_record(self, task_id: str, offer_no: int) -> dict[str, Any] | None:
        """An assignment written by a hub before issue 9 (a JSON file in the data folder)."""
        record = self._root / LEGACY_ASSIGNMENTS / f"{task_id}-{offer_no}.json"
        try:
            data: dict[str, Any] = json.loads(record.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return data


def check_live(task: TaskSnapshot, offer_no: int) -> None:
    """Raise NotFound unless offer ``offer_no`` still holds ``task`` (claimed, preparing or
    running): a task token stops working once the task is cancelled, done, failed or
    handed to another machine (issue 13, item 10)."""
    if task.offer_no != offer_no or task.state not in LEASED_TASK_STATES:
        raise NotFound(
            f"task {task.task_id} offer {offer_no} is no longer assigned "
            f"(task is {task.state.value}, offer {task.offer_no}): its G-code is not served"
        )


def _adopt_or_make_secret(root: Path) -> str:
    """The token secret a hub before issue 9 kept in its data folder (its tokens stay valid),
    else a new one."""
    legacy = root / LEGACY_SECRET_FILE
    if legacy.exists():
        text = legacy.read_text().strip()
        bytes.fromhex(text)  # a damaged file is an error, not a silently new secret
        log.info("token secret adopted from %s into the database", legacy)
        return text
    return secrets.token_hex(32)
