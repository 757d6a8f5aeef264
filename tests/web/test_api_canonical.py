"""The hub canonicalises material names and profile ids where they come in: registration, a
maker's configuration change and job submission ("pla" is PLA)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import CUBE, ApiHub, api_hub, json_of

from fabnet.config import load_agent_config


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[ApiHub]:
    with api_hub(tmp_path) as h:
        yield h


def test_registration_writes_canonical_names(hub: ApiHub, tmp_path: Path) -> None:
    body = {"agent": "ada", "machine": "mini-9", "profile": "Prusa_Mini", "material": "pla",
            "policy": {"materials": ["pla", "petg"]}}  # fmt: skip
    answer = hub.client("ada").post("/api/v1/machines", json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    path = tmp_path / "agent.toml"
    path.write_text(json_of(answer)["config_toml"])
    (machine,) = load_agent_config(path).machines
    assert (machine.profile, machine.material) == ("prusa_mini", "PLA")
    assert machine.policy.materials == ("PLA", "PETG")
    recorded = hub.store.catalog.get_machine("ada/mini-9")
    assert recorded.materials == frozenset({"PLA"})
    assert recorded.policy.materials_accepted == frozenset({"PLA", "PETG"})


def test_unknown_material_is_refused_naming_the_known_ones(hub: ApiHub) -> None:
    body = {"agent": "ada", "machine": "mini-9", "profile": "prusa_mini", "material": "plaa"}
    answer = hub.client("ada").post("/api/v1/machines", json=body)
    assert answer.status_code == 400
    assert "unknown material 'plaa'; known: PLA" in answer.get_data(as_text=True)


def test_configuration_refuses_unknown_and_jobs_take_the_tables_spelling(hub: ApiHub) -> None:
    """(That a configuration change is pushed canonical: tests/network/.)"""
    answer = hub.client("ada").put(
        "/api/v1/machines/ada/mk3s-1", json={"policy": {"materials": ["pla", "nylon"]}}
    )
    assert answer.status_code == 400
    assert "policy.materials: unknown material 'nylon'" in answer.get_data(as_text=True)
    job = hub.client("rita").post(
        "/api/v1/jobs", json={"design": CUBE, "quantity": 1, "material": "pla"}
    )
    assert json_of(job)["material"] == "PLA"
