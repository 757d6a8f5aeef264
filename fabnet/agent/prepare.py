"""Turning a ``task.assign`` into a file that is safe to run: fetch, verify, check against the
agent's own copy of the machine's profile, and analyse it for the report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fabnet.agent.artifacts import ArtifactRef, FetchSettings, fetch_artifact
from fabnet.agent.reports import violations_reason
from fabnet.bus.messages import TaskAssign
from fabnet.errors import InvalidInput, SafetyError
from fabnet.gcode import analyse, check
from fabnet.profiles import FdmMaterial, MachineProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    """A verified, checked file: what it will use (g) and how many lines it has."""

    path: Path
    sha256: str
    grams: float
    lines_total: int
    est_time_s: float


def prepare(
    assign: TaskAssign,
    profile: MachineProfile,
    material: FdmMaterial | None,
    work_dir: Path,
    hub_url: str,
    fetch: FetchSettings,
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
    ref = ArtifactRef(assign.url, assign.token, assign.size_bytes, assign.sha256)
    fetch_artifact(ref, dest, hub_url, fetch)
    try:
        violations = check(dest, profile)
        if violations:
            raise SafetyError(violations_reason(profile.id, violations), violations)
        analysis = analyse(dest, profile, material)
    except (InvalidInput, SafetyError):
        dest.unlink(missing_ok=True)
        raise
    log.info("task %s: %s verified, %d lines, %.1f g", assign.task_id, dest.name,
             analysis.lines, analysis.grams)  # fmt: skip
    return PreparedJob(dest, assign.sha256.lower(), analysis.grams, analysis.lines, analysis.time_s)
