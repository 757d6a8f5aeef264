"""Relative paths in a config file are taken against the file's folder, once, at load; a hub
started from a config in another folder serves its artifacts."""

from __future__ import annotations

import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from config_files import API_TOKEN, agent_toml, hub_toml

from fabnet.bus import messages as m
from fabnet.config import load_agent_config, load_hub_config
from fabnet.core.events import TaskAccepted, TaskOffered
from fabnet.core.jobs import Quality
from fabnet.hub.machines import machine_from_status
from fabnet.hub.process import Hub
from fabnet.hub.service import JobRequest
from fabnet.web.app import TOKEN_HEADER

if TYPE_CHECKING:
    from conftest import BrokerHandle


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config folder ``tmp_path/etc``; the current folder is another one."""
    cwd = tmp_path / "run"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path / "etc"


def test_hub_paths_are_taken_against_the_config_folder(elsewhere: Path) -> None:
    path = hub_toml(
        elsewhere,
        hub='data_dir = "var/hub"',
        broker='url = "mqtts://b"\nca_file = "tls/ca.pem"\npassword_file = "../mosq/passwd"',
        database='url = "sqlite:///var/fabnet.db"',
    )
    config = load_hub_config(Path("..") / "etc" / "hub.toml")  # a relative config path, too
    assert config.data_dir == elsewhere / "var" / "hub"
    assert config.broker.ca_file == elsewhere / "tls" / "ca.pem"
    assert config.broker.password_file == elsewhere.parent / "mosq" / "passwd"
    assert config.database_url == f"sqlite:///{elsewhere / 'var' / 'fabnet.db'}"
    assert path.parent == elsewhere


def test_defaults_absolute_and_non_file_urls(elsewhere: Path) -> None:
    config = load_hub_config(hub_toml(elsewhere))
    assert config.data_dir == elsewhere / "var"
    assert config.database_url == f"sqlite:///{elsewhere / 'var' / 'fabnet.db'}"
    for url in ("sqlite:////srv/f.db", "sqlite://", "postgresql+psycopg2://u@db/fabnet"):
        assert load_hub_config(hub_toml(elsewhere, database=f'url = "{url}"')).database_url == url


def test_agent_paths_are_taken_against_the_config_folder(elsewhere: Path) -> None:
    path = agent_toml(
        elsewhere,
        agent='data_dir = "state"',
        machine=f'profile = "{Path(__file__).parents[2] / "firmware_profiles" / "prusa_mini.toml"}"',
    )
    config = load_agent_config(path)
    assert config.data_dir == elsewhere / "state"
    assert config.machines[0].profile.endswith("prusa_mini.toml")
    relative = agent_toml(elsewhere, agent='data_dir = "~/fabnet-agent"', name="home.toml")
    assert load_agent_config(relative).data_dir == Path.home() / "fabnet-agent"


def claimed_task(hub: Hub) -> str:
    """A task held by offer 1 of a busy machine ``mk/x``, so that its artifact may be served."""
    job = hub.service.submit(JobRequest(design="cube-xyz-20mm", quantity=1, material="PLA"))
    (task,) = hub.store.tasks.find(job_id=job.spec.job_id)
    now = datetime.now(UTC)
    hub.store.catalog.add_maker("mk", now, maker_id="mk")
    caps = m.Capabilities(
        profile="prusa_mini", kind=m.MachineKind.FDM, volume_mm=m.Xyz(x=180, y=180, z=180),
        nozzle_mm=0.4, materials=("PLA",),
    )  # fmt: skip
    status = m.MachineStatus(machine="x", state=m.MachineState.BUSY, capabilities=caps)
    machine = machine_from_status("mk", status, now)
    hub.store.catalog.upsert_machine(machine)
    hub.store.apply_event(task.task_id, TaskOffered(machine_id=machine.machine_id), now)
    hub.store.apply_event(
        task.task_id, TaskAccepted(machine_id=machine.machine_id, offer_no=1), now
    )
    return task.task_id


def test_a_hub_started_from_another_folder_serves_its_artifacts(
    elsewhere: Path, mosquitto: BrokerHandle
) -> None:
    path = hub_toml(
        elsewhere,
        hub=f'id = "hub-{uuid.uuid4().hex[:8]}"\ndata_dir = "var/hub"',
        broker=f'url = "mqtt://{mosquitto.host}:{mosquitto.port}"\n'
        f'password = "{mosquitto.users[mosquitto.hub_user]}"\naccounts = "none"',
        database='url = "sqlite:///var/fabnet.db"',
    )
    hub = Hub(replace(load_hub_config(path), http_port=0))
    hub.start()
    try:
        cube = hub.designs.resolve("cube-xyz-20mm")
        made = hub.artifacts.produce(cube, "prusa_mini", "PLA", Quality.DRAFT, 1)
        task_id = claimed_task(hub)  # a token works only while its task is held (issue 13)
        token = hub.artifacts.record_assignment(task_id, 1, made)
        request = urllib.request.Request(f"{hub.public_url}/artifacts/{task_id}/1")
        request.add_header(TOKEN_HEADER, token)
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
            assert len(answer.read()) == made.size_bytes
        status = urllib.request.Request(f"{hub.public_url}/api/v1/jobs")
        status.add_header("Authorization", f"Bearer {API_TOKEN}")
        with urllib.request.urlopen(status, timeout=30) as answer:
            assert answer.status == 200
    finally:
        hub.stop()
    assert made.path.is_relative_to(elsewhere / "var" / "hub")
    assert (elsewhere / "var" / "fabnet.db").exists()
    assert not list(Path.cwd().iterdir()), "nothing is written to the current folder"
