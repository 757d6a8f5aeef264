"""``MachineSetup``: everything fixed about one machine of an agent, resolved at start (profile,
material, availability windows) and replaced whole when the hub reconfigures the machine.

Its own module so that ``overrides`` (which builds a new setup) and ``runner`` (which runs
one) both depend on it rather than on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fabnet.agent.artifacts import FetchSettings
from fabnet.config import MachineConfig
from fabnet.core.cron import CronExpr
from fabnet.profiles import FdmMaterial, MachineProfile


@dataclass(frozen=True)
class MachineSetup:
    """Everything fixed about one machine of this agent."""

    agent_id: str
    config: MachineConfig
    profile: MachineProfile
    material: FdmMaterial | None  # density for grams; None for CNC stock
    windows: tuple[CronExpr, ...]
    work_dir: Path
    hub_url: str
    fetch: FetchSettings = field(default_factory=FetchSettings)
