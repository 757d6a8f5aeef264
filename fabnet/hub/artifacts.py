"""Task artifacts: the G-code for one task on the machine it was assigned to.

G-code is produced once per (design, profile, material, quality, parts, slicer) and cached on
disk; each assignment (task, offer) gets a record pointing at it and a one-task token, an HMAC
of the assignment under a secret kept in the data folder, so tokens survive a hub restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from fabnet.core.jobs import Quality
from fabnet.core.states import LEASED_TASK_STATES
from fabnet.core.tasks import TaskSnapshot
from fabnet.errors import NotFound, SafetyError
from fabnet.gcode import analyse, check
from fabnet.hub.designs import DesignEntry
from fabnet.library.mesh import load_mesh, prepare_mesh
from fabnet.profiles import FdmMaterial, load_materials, load_profile
from fabnet.slicing.base import SliceSettings
from fabnet.slicing.registry import get_slicer, slicer_name_for

log = logging.getLogger(__name__)


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


class ArtifactStore:
    """Produces, caches and authorises task G-code under ``root``."""

    def __init__(
        self, root: Path, slicer: str = "builtin", machine_slicers: dict[str, str] | None = None
    ) -> None:
        self._root = root
        self._cache_dir = root / "gcode"
        self._assign_dir = root / "assignments"
        for folder in (root, self._cache_dir, self._assign_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._slicer = slicer
        self._machine_slicers = dict(machine_slicers or {})
        self._secret = _load_secret(root / "token.secret")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

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

        Raises MeshError when the design cannot be sliced for that machine and SafetyError when
        the produced G-code would exceed the profile's limits (it is then never served)."""
        profile = load_profile(profile_id)
        preferred = self._machine_slicers.get(machine_id, self._slicer)
        slicer_name = slicer_name_for(profile, preferred)
        key_text = f"{entry.design_id}|{profile_id}|{material_name}|{quality}|{parts}|{slicer_name}"
        key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
        path = self._cache_dir / f"{key}.gcode"
        with self._lock_for(key):
            if not path.exists():
                self._slice_to(path, entry, profile_id, material_name, quality, parts, slicer_name)
            meta = json.loads(path.with_suffix(".json").read_text())
        return Artifact(path, meta["size_bytes"], meta["sha256"], meta["grams"], meta["time_s"])

    def _slice_to(
        self,
        path: Path,
        entry: DesignEntry,
        profile_id: str,
        material_name: str,
        quality: Quality,
        parts: int,
        slicer_name: str,
    ) -> None:
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
        meta = {
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "grams": analysis.grams,
            "time_s": analysis.time_s,
            "design": entry.design.slug,
            "profile": profile_id,
            "material": material_name,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        path.with_suffix(".json").write_text(json.dumps(meta))
        tmp.replace(path)  # the .gcode appears last: its existence means the pair is complete
        log.info("produced %s (%d bytes) for %s", path.name, len(data), key_summary(meta))

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def record_assignment(self, task_id: str, offer_no: int, artifact: Artifact) -> str:
        """Remember which file (task, offer) may fetch and return its one-task token."""
        record = self._assign_dir / f"{task_id}-{offer_no}.json"
        fields = {"path": artifact.path.name, "sha256": artifact.sha256}
        figures = {"grams": artifact.grams, "time_s": artifact.time_s}
        record.write_text(json.dumps({**fields, **figures}))
        return self.token(task_id, offer_no)

    def assignment(self, task_id: str, offer_no: int) -> Assignment | None:
        """The record of what (task, offer) was assigned, None if no G-code was assigned."""
        record = self._assign_dir / f"{task_id}-{offer_no}.json"
        try:
            data = json.loads(record.read_text())
        except FileNotFoundError:
            return None
        return Assignment(str(data["sha256"]), data.get("grams"), data.get("time_s"))

    def token(self, task_id: str, offer_no: int) -> str:
        message = f"{task_id}:{offer_no}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def open_assignment(self, task_id: str, offer_no: int, token: str) -> Path:
        """The file for (task, offer) if ``token`` is its token; NotFound otherwise (a wrong
        token and an unknown assignment look the same to the caller)."""
        if not hmac.compare_digest(self.token(task_id, offer_no), token):
            raise NotFound(f"no artifact for task {task_id} offer {offer_no} with that token")
        record = self._assign_dir / f"{task_id}-{offer_no}.json"
        if not record.exists():
            raise NotFound(f"no artifact for task {task_id} offer {offer_no}")
        return self._cache_dir / json.loads(record.read_text())["path"]


def check_live(task: TaskSnapshot, offer_no: int) -> None:
    """Raise NotFound unless offer ``offer_no`` still holds ``task`` (claimed, preparing or
    running): a task token stops working once the task is cancelled, done, failed or
    handed to another machine (issue 13, item 10)."""
    if task.offer_no != offer_no or task.state not in LEASED_TASK_STATES:
        raise NotFound(
            f"task {task.task_id} offer {offer_no} is no longer assigned "
            f"(task is {task.state.value}, offer {task.offer_no}): its G-code is not served"
        )


def key_summary(meta: dict[str, object]) -> str:
    return f"{meta['design']} on {meta['profile']} in {meta['material']}"


def _load_secret(path: Path) -> bytes:
    if not path.exists():
        # created owner-only: never world-readable, not even for a moment (issue 13)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
