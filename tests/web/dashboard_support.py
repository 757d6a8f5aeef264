"""A hub's web app on a real SQLite file, with users of each role and a job moved along by the
same core events agents send: what the page tests render."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api_support import sample_machine
from flask import Flask
from flask.testing import FlaskClient

from fabnet.core import events as ev
from fabnet.core.jobs import Quality
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService, JobRequest
from fabnet.store import Store
from fabnet.store.accounts import Accounts
from fabnet.web import create_app

PASSWORD = "correct horse battery"
CUBE = "cube-xyz-20mm"


@dataclass
class WebHub:
    app: Flask
    store: Store
    service: HubService
    artifacts: ArtifactStore
    accounts: Accounts

    def client(self, name: str | None = None) -> FlaskClient:
        """A test client, logged in as ``name`` when given (through the real log-in form)."""
        client = self.app.test_client()
        if name is not None:
            page = client.get("/login").get_data(as_text=True)
            token = csrf_in(page)
            answer = client.post(
                "/login",
                data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
            )
            assert answer.status_code == 302, answer.get_data(as_text=True)
        return client


def csrf_in(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def make_web_hub(tmp_path: Path) -> WebHub:
    now = datetime.now(UTC)
    store = Store(f"sqlite:///{tmp_path / 'fabnet.db'}")
    designs = DesignCatalog(store)
    designs.register_library(now)
    service = HubService(store, designs, cancel_tasks=lambda job_id, reason: None)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    app = create_app(service, artifacts, "api-token-for-tests")
    accounts = Accounts(store.db)
    app.config["TESTING"] = True
    accounts.add_user("olga", PASSWORD, ["operator"], now)
    accounts.add_user("rita", PASSWORD, ["requester"], now)
    accounts.add_user("ravi", PASSWORD, ["requester"], now)
    accounts.add_user("ada", PASSWORD, ["maker"], now, maker_ids=["ada"])
    accounts.add_user("bruno", PASSWORD, ["maker"], now, maker_ids=["bruno"])
    for maker, machine, auto in (("ada", "mk3s-1", True), ("bruno", "ender3-1", False)):
        store.catalog.add_maker(maker, now, maker_id=maker)
        store.catalog.upsert_machine(sample_machine(maker, machine, auto, now))
    return WebHub(app, store, service, artifacts, accounts)


def run_job(hub: WebHub, requester: str, quantity: int = 2) -> tuple[str, list[str]]:
    """Submit a cube job for ``requester``; its first task finishes on ada's machine (with
    real G-code recorded), its second is left offered to bruno's ask-first machine."""
    info = hub.service.submit(
        JobRequest(
            design=CUBE, quantity=quantity, material="PLA", quality="draft", requester=requester
        )
    )
    job_id = info.spec.job_id
    tasks = [t.task_id for t in hub.store.tasks.find(job_id=job_id)]
    now = datetime.now(UTC) - timedelta(minutes=3)
    first, machine = tasks[0], "ada/mk3s-1"
    for step in (
        ev.TaskOffered(machine_id=machine, offer_s=30),
        ev.TaskAccepted(machine_id=machine, offer_no=1, lease_s=60),
        ev.TaskAssigned(machine_id=machine, offer_no=1, lease_s=60),
        ev.TaskStarted(machine_id=machine, offer_no=1, lease_s=60),
        ev.TaskProgressed(machine_id=machine, offer_no=1, fraction=0.5, lease_s=60),
        ev.TaskCompleted(machine_id=machine, offer_no=1, grams=7.5, machine_hours=0.4),
    ):
        hub.store.apply_event(first, step, now)
        now += timedelta(seconds=10)
    entry = hub.service.designs.resolve(CUBE)
    artifact = hub.artifacts.produce(entry, "prusa_mk3s", "PLA", Quality.DRAFT, 1)
    hub.artifacts.record_assignment(first, 1, artifact)
    if len(tasks) > 1:
        hub.store.apply_event(
            tasks[1], ev.TaskOffered(machine_id="bruno/ender3-1", offer_s=600), datetime.now(UTC)
        )
    return job_id, tasks
