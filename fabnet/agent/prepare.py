"""Turning a ``task.assign`` into a file that is safe to run: fetch it (size and sha256 checked
once, while downloading), then check it against the agent's own copy of the machine's profile
and analyse it in ONE pass (``gcode.verify``). The verdict is remembered by content: a file
already verified for the same profile and material (same sha256) is not parsed again — a hub
serves the same few files over and over (issue 9: 4 distinct files for 1,000 tasks).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fabnet.agent.artifacts import ArtifactRef, FetchSettings, fetch_artifact
from fabnet.agent.reports import violations_reason
from fabnet.bus.messages import TaskAssign
from fabnet.errors import InvalidInput, SafetyError
from fabnet.gcode import Analysis, Verified, verify
from fabnet.profiles import FdmMaterial, MachineProfile

log = logging.getLogger(__name__)

CACHE_ENTRIES = 64  # verdicts kept (a few hundred bytes each, plus any violations)


@dataclass(frozen=True)
class PreparedJob:
    """A verified, checked file: what it will use (g), how many lines it has, and the whole
    analysis (handed to a driver that would otherwise analyse the file again)."""

    path: Path
    sha256: str
    grams: float
    lines_total: int
    est_time_s: float
    analysis: Analysis


_Key = tuple[str, MachineProfile, FdmMaterial | None]


class VerdictCache:
    """The last ``size`` verdicts by (sha256, profile, material), least recently used out.
    Keyed by the profile and material themselves (frozen, compared by value), so a changed
    profile or another material is a miss. Thread-safe: every machine's worker shares it."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self.size = size
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, Verified] = OrderedDict()

    def get(self, key: _Key) -> Verified | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: _Key, verdict: Verified) -> None:
        with self._lock:
            self._entries[key] = verdict
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


VERDICTS = VerdictCache()


def prepare(
    assign: TaskAssign,
    profile: MachineProfile,
    material: FdmMaterial | None,
    work_dir: Path,
    hub_url: str,
    fetch: FetchSettings,
    verdicts: VerdictCache = VERDICTS,
) -> PreparedJob:
    """Fetch and check the assigned file; the machine is not touched.

    Raises InvalidInput (wrong profile, foreign URL, size or sha256 mismatch, unparseable
    G-code), SafetyError (the first few violations, with line numbers, in its message),
    DeviceError / DeviceTimeout (the hub's HTTP server refused or did not answer)."""
    if assign.profile != profile.id:
        raise InvalidInput(
            f"task is sliced for profile {assign.profile}, this machine is {profile.id}"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    dest = work_dir / f"{assign.task_id}-{assign.attempt}.gcode"
    sha256 = assign.sha256.lower()
    ref = ArtifactRef(assign.url, assign.token, assign.size_bytes, sha256)
    fetch_artifact(ref, dest, hub_url, fetch)  # the bytes on disk now have this sha256
    key: _Key = (sha256, profile, material)
    try:
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verify(dest, profile, material)
            verdicts.put(key, verdict)
        if not verdict.safe:
            violations = list(verdict.violations)
            raise SafetyError(violations_reason(profile.id, violations), violations)
    except (InvalidInput, SafetyError):
        dest.unlink(missing_ok=True)
        raise
    analysis = verdict.analysis
    log.info("task %s: %s verified, %d lines, %.1f g", assign.task_id, dest.name,
             analysis.lines, analysis.grams)  # fmt: skip
    return PreparedJob(dest, sha256, analysis.grams, analysis.lines, analysis.time_s, analysis)
