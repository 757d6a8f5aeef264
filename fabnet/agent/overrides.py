"""Loaded material and policy the hub pushed (``machine.configure``): applied to a machine's
config and kept in the agent's data folder, so a restart keeps them over agent.toml."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

from fabnet.agent.policy import parse_windows
from fabnet.agent.setup import MachineSetup
from fabnet.bus.messages import MachineConfigure
from fabnet.bus.schema import build
from fabnet.config import MachineConfig, MachinePolicy
from fabnet.errors import InvalidInput
from fabnet.profiles import CncMaterial, FdmMaterial, MachineKind, MachineProfile, load_materials

log = logging.getLogger(__name__)

OVERRIDES_FILE = "machine_overrides.json"


def configured(config: MachineConfig, cmd: MachineConfigure) -> MachineConfig:
    """``config`` with the material and policy of ``cmd``; a missing ``max_task_hours``
    (no limit) becomes infinity, as the policy compares hours against it."""
    hours = math.inf if cmd.max_task_hours is None else cmd.max_task_hours
    policy = MachinePolicy(
        materials=cmd.materials,
        max_task_hours=hours,
        auto_accept=cmd.auto_accept,
        windows=cmd.windows,
    )
    return dataclasses.replace(config, material=cmd.material, policy=policy)


def resolve_material(profile: MachineProfile, name: str) -> FdmMaterial | None:
    """The material ``name`` for ``profile`` (None for CNC stock). Raises InvalidInput for an
    unknown material or one of the wrong kind (FDM filament on a CNC, stock on a printer)."""
    try:
        material = load_materials().get(name)
    except KeyError as exc:
        raise InvalidInput(f"material: {exc}") from None
    if isinstance(material, CncMaterial) != (profile.kind is MachineKind.CNC):
        raise InvalidInput(
            f"material {name} does not suit {profile.kind.value} profile {profile.id}"
        )
    return material if isinstance(material, FdmMaterial) else None


def reconfigured(setup: MachineSetup, cmd: MachineConfigure) -> MachineSetup:
    """``setup`` with the material and policy of ``cmd``. Raises InvalidInput for a material
    its profile cannot take or a window that is not a cron expression."""
    config = configured(setup.config, cmd)
    material = resolve_material(setup.profile, config.material)
    windows = parse_windows(config.policy, config.machine_id)
    return dataclasses.replace(setup, config=config, material=material, windows=windows)


def _to_json(cmd: MachineConfigure) -> dict[str, Any]:
    return {
        "material": cmd.material,
        "materials": list(cmd.materials),
        "max_task_hours": cmd.max_task_hours,
        "auto_accept": cmd.auto_accept,
        "windows": list(cmd.windows),
    }


class Overrides:
    """The ``machine_overrides.json`` of one agent: machine id -> the last ``machine.configure``
    applied to it. Saved atomically; safe to call from every machine's worker thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._saved = self._read()

    def _read(self) -> dict[str, MachineConfigure]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("%s unreadable, machine overrides ignored: %s", self._path, exc)
            return {}
        found: dict[str, MachineConfigure] = {}
        for machine, fields in data.items() if isinstance(data, dict) else ():
            try:
                found[machine] = build(MachineConfigure, {**fields, "machine": machine})
            except (InvalidInput, TypeError) as exc:
                log.error("%s: override of machine %s ignored: %s", self._path, machine, exc)
        return found

    def apply(self, config: MachineConfig) -> MachineConfig:
        """``config`` with its saved override, if any."""
        with self._lock:
            cmd = self._saved.get(config.machine_id)
        return config if cmd is None else configured(config, cmd)

    def save(self, cmd: MachineConfigure) -> None:
        """Keep ``cmd`` as its machine's override (written to disk before returning)."""
        with self._lock:
            self._saved[cmd.machine] = cmd
            data = {machine: _to_json(c) for machine, c in sorted(self._saved.items())}
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            os.replace(tmp, self._path)
