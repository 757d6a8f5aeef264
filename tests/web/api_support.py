"""A hub app for the API tests: SQLite file in tmp_path, a one-design library copy, users of
every role, two makers' machines (one asks its maker), and a dispatcher with no broker."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from fabnet.bus.client import BusClient, BusSettings
from fabnet.core import events as ev
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState
from fabnet.core.tasks import Transition
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatcher import Dispatcher
from fabnet.hub.service import HubService, JobRequest
from fabnet.library.design import library_dir
from fabnet.store import Store
from fabnet.web import create_app
from fabnet.web.api import BrokerSettings
from fabnet.web.app import WebSettings

PASSWORD = "correct horse battery"
BOOTSTRAP = "bootstrap-token-for-tests"
CUBE = "cube-xyz-20mm"
MODELS = Path(__file__).resolve().parents[1] / "data" / "models"


@dataclass
class ApiHub:
    app: Flask
    store: Store
    service: HubService
    dispatcher: Dispatcher
    root: Path
    tokens: dict[str, str]

    def client(self, name: str) -> FlaskClient:
        """A client whose every request carries ``name``'s bearer token."""
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.tokens[name]}"
        return client

    def job(self, requester: str, quantity: int = 1) -> str:
        request = JobRequest(design=CUBE, quantity=quantity, material="PLA", requester=requester)
        return self.service.submit(request).spec.job_id

    def offer(self, job_id: str, machine_id: str) -> str:
        """Offer the job's first task to ``machine_id``; returns the task id."""
        task = self.store.tasks.find(job_id=job_id)[0]
        moved = self.store.apply_event(
            task.task_id, ev.TaskOffered(machine_id=machine_id, offer_s=600), datetime.now(UTC)
        )
        assert moved is not None
        return task.task_id


def sample_machine(maker: str, name: str, auto: bool, now: datetime) -> Machine:
    """An idle MK3S-sized PLA printer of ``maker``; ``auto`` = accepts offers by itself."""
    return Machine(
        machine_id=f"{maker}/{name}",
        maker_id=maker,
        kind=MachineKind.FDM,
        volume_mm=(250.0, 210.0, 210.0),
        nozzle_mm=0.4,
        materials=frozenset({"PLA"}),
        policy=MachinePolicy(auto_accept=auto),
        state=MachineState.IDLE,
        profile="prusa_mk3s",
        name=name,
        last_seen=now,
    )


@contextmanager
def api_hub(tmp_path: Path, url: str | None = None) -> Iterator[ApiHub]:
    now = datetime.now(UTC)
    store = Store(url or f"sqlite:///{tmp_path / 'fabnet.db'}")
    library = tmp_path / "library"
    shutil.copytree(library_dir() / CUBE, library / CUBE)
    designs = DesignCatalog(store, library)
    designs.register_library(now)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    bus = BusClient(BusSettings("127.0.0.1", 1, "hub", "hub-password", "fabnet-hub-test"))
    dispatcher = Dispatcher(
        store, bus, designs, artifacts, "http://127.0.0.1:1", lease_s=60, offer_timeout_s=60
    )
    service = HubService(store, designs, dispatcher.cancel_job)
    settings = WebSettings(
        data_dir=tmp_path / "hub",
        hub_url="http://hub.example:5000",
        broker=BrokerSettings(
            "mqtt://broker.example:1883", "hub", "hub-password", tmp_path / "broker" / "passwd"
        ),
        library_dir=library,
    )
    app = create_app(service, artifacts, BOOTSTRAP, settings=settings, dispatcher=dispatcher)
    app.config["TESTING"] = True
    accounts = store.accounts
    tokens = {"boot": BOOTSTRAP}
    for name, roles, makers in (
        ("olga", ["operator"], []),
        ("rita", ["requester"], []),
        ("ravi", ["requester"], []),
        ("ada", ["maker", "requester"], ["ada"]),
        ("bruno", ["maker"], ["bruno"]),
    ):
        account = accounts.add_user(name, PASSWORD, roles, now, maker_ids=makers)
        tokens[name] = accounts.issue_token(account.user_id, "tests", now)[0]
    for maker, machine, auto in (("ada", "mk3s-1", True), ("bruno", "ender3-1", False)):
        store.catalog.add_maker(maker, now, maker_id=maker)
        store.catalog.upsert_machine(sample_machine(maker, machine, auto, now))
    dispatcher.start()
    try:
        yield ApiHub(app, store, service, dispatcher, tmp_path, tokens)
    finally:
        dispatcher.stop()
        store.close()


def json_of(answer: Any) -> Any:
    data = answer.get_json()
    assert data is not None, answer.get_data(as_text=True)
    return data


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` served on a free loopback port for the block (threaded): its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def complete_on(hub: ApiHub, task_id: str, machine: str, grams: float,
                machine_hours: float) -> None:  # fmt: skip
    """Make ``task_id`` on ``machine`` with the events its holder (an agent, or a peer hub's
    pseudo-machine) would send: offered, accepted, assigned, started, completed."""
    now = datetime.now(UTC)
    offer = hub.store.apply_event(task_id, ev.TaskOffered(machine_id=machine, offer_s=60), now)
    assert isinstance(offer, Transition), offer
    n = offer.task.offer_no
    for event in (
        ev.TaskAccepted(machine_id=machine, offer_no=n, lease_s=900),
        ev.TaskAssigned(machine_id=machine, offer_no=n, lease_s=900),
        ev.TaskStarted(machine_id=machine, offer_no=n),
        ev.TaskCompleted(machine_id=machine, offer_no=n, grams=grams, machine_hours=machine_hours),
    ):
        assert isinstance(hub.store.apply_event(task_id, event, now), Transition), event
