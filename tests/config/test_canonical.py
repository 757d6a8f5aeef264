"""Material names and profile ids are canonical from load on: a machine loaded with "pla" is
offered PLA work."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from config_files import agent_toml

from fabnet.agent.reports import capabilities, machine_status
from fabnet.bus.messages import MachineState
from fabnet.config import load_agent_config
from fabnet.core.matching import MachineIndex, TaskRequest
from fabnet.core.states import MachineKind
from fabnet.errors import ConfigError
from fabnet.hub.machines import machine_from_status
from fabnet.profiles import load_profile
from fabnet.profiles.canonical import canonical_material, canonical_profile

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def test_names_take_the_tables_spelling() -> None:
    assert canonical_material(" pla ") == "PLA"
    assert canonical_material("PLYWOOD") == "plywood"
    assert canonical_profile("Prusa_MK3S") == "prusa_mk3s"


def test_config_canonicalises_material_policy_and_profile(tmp_path: Path) -> None:
    path = agent_toml(
        tmp_path,
        machine='material = "pla"\nprofile = "PRUSA_MK3S"',
        policy='materials = ["pla", "Petg"]',
    )
    machine = load_agent_config(path).machines[0]
    assert (machine.material, machine.profile) == ("PLA", "prusa_mk3s")
    assert machine.policy.materials == ("PLA", "PETG")


def test_unknown_names_are_errors_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"material: unknown material 'plaa'; known: PLA, PETG"):
        load_agent_config(agent_toml(tmp_path, machine='material = "plaa"'))
    with pytest.raises(ConfigError, match="unknown material 'nylon'; known: .*plywood"):
        load_agent_config(agent_toml(tmp_path, policy='materials = ["PLA", "nylon"]'))
    with pytest.raises(ConfigError, match="profile must be one of .*prusa_mk3s.*, got 'mk3'"):
        load_agent_config(agent_toml(tmp_path, machine='profile = "mk3"'))


def test_a_machine_loaded_with_pla_is_offered_pla_work(tmp_path: Path) -> None:
    """The agent's status for a "pla" machine, as the hub reads it, matches a PLA task."""
    path = agent_toml(tmp_path, machine='material = "pla"', policy='materials = ["pla"]')
    config = load_agent_config(path).machines[0]
    caps = capabilities(config, load_profile(config.profile))
    status = machine_status(config, caps, MachineState.IDLE, None)
    index = MachineIndex()
    index.upsert(machine_from_status("alice", status, NOW))
    task = TaskRequest("t1", MachineKind.FDM, "PLA", (20, 20, 20), 1.0, created_at=NOW)
    [assignment] = index.match([task], NOW)
    assert assignment.machine_id == "alice/m1"


def test_ids_are_checked_as_topics_and_accounts_need_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: agent.id: id must be 1-64 letters"):
        load_agent_config(agent_toml(tmp_path, agent='id = "alice/bob"'))
    with pytest.raises(ConfigError, match=r"machines\[0\].id: id must be 1-64 letters"):
        load_agent_config(agent_toml(tmp_path, machine='id = "mk3 #1"'))
