"""The origin's delegator against a peer on loopback HTTP: hub alpha (no machines) hands its
CNC tasks to beta, whose signed ``/federation/v1`` endpoints are beta's own blueprint
(``make_peer_endpoints`` over beta's store and key) with a small ``/tasks`` handler at the edge
that answers a ``TransferAnswer`` the test chooses (so refusals can be staged); the last test
sends to beta's own app, whose ``/tasks`` is the real intake.

Accepted -> the task is ``preparing``, held by ``peer:beta`` under the peer lease; refused or
unreachable -> back in the queue and not sent there again during the cool-down; a crash
between the offer and the request -> the offer lapses through the offer sweep; a closed design
is never sent. The hub's own machinery (the dispatcher's sweeps and production) leaves a
peer-held task alone, and no agent can speak as ``peer:<hub>``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from test_federation_hubs import SKEW_S, Hub, hub
from werkzeug.serving import make_server

from fabnet.bus import topics
from fabnet.bus.schema import InvalidMessage
from fabnet.config import FederationConfig
from fabnet.core.designs import Design
from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskCompleted,
    TaskEvent,
    TaskOffered,
    TaskProgressed,
    TaskRejected,
)
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import AttemptCause, IgnoreReason, MachineKind, MachineState, TaskState
from fabnet.core.tasks import Ignored, Transition
from fabnet.errors import InvalidInput
from fabnet.federation import wire
from fabnet.federation.advertise import CapacityService
from fabnet.federation.capacity import CapacityLine, CapacitySummary, summary_json
from fabnet.federation.delegate import Delegator
from fabnet.federation.inbound import Verified
from fabnet.federation.peers import PeerService
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch import Dispatcher, InMemoryBus
from fabnet.hub.machines import hub_machine_id
from fabnet.hub.service import HubService, JobRequest
from fabnet.library.design import library_dir
from fabnet.store import Store
from fabnet.store.peer_models import PeerCapacityRow, PeerRow
from fabnet.store.peer_reports import PeerTransfers, ensure_peer_machine, peer_tasks_in_flight
from fabnet.store.peers import PeerCapacities, Peers
from fabnet.web.api.federation import make_peer_endpoints

PEER_LEASE_S = 900.0
TRANSFER_S = 60.0
BETA_TASK = "b" * 32
CHECKOUT_LIBRARY = sorted(p.name for p in library_dir().iterdir())  # left as it is


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Edge:
    """Beta's signed endpoints with a ``/tasks`` that keeps what it got and answers ``answer``."""

    url: str = ""
    received: list[wire.TaskTransfer] = field(default_factory=list)
    answer: wire.TransferAnswer = wire.TransferAnswer(True, BETA_TASK)

    def intake(self, verified: Verified, payload: dict[str, Any]) -> dict[str, Any]:
        assert verified.peer.name == "alpha"
        self.received.append(wire.transfer_from_json(payload))
        return wire.answer_json(self.answer)


@contextmanager
def edge_of(beta: Hub) -> Iterator[Edge]:
    edge = Edge()
    app = Flask("beta-edge")
    ctx = beta.app.extensions["fabnet_api_context"]
    app.register_blueprint(make_peer_endpoints(ctx, {"/tasks": edge.intake}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    edge.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield edge
    finally:
        server.shutdown()


@dataclass
class Pair:
    alpha: Hub
    beta: Hub
    edge: Edge
    tmp_path: Path

    def peers(self, h: Hub, clock: Callable[[], datetime] = now) -> PeerService:
        key_file = self.tmp_path / h.name / "federation" / "hub_ed25519.pem"
        return PeerService(Peers(h.store.db), FederationConfig(h.name, key_file, SKEW_S), clock)

    def delegator(self, **options: Any) -> Delegator:
        peers = self.peers(self.alpha)
        designs = DesignCatalog(self.alpha.store, library_dir())
        return Delegator(self.alpha.store, peers, CapacityService(self.alpha.store, peers, now),
                         designs, now, peer_lease_s=PEER_LEASE_S, transfer_timeout_s=TRANSFER_S,
                         **options)  # fmt: skip

    def submit(self, quantity: int = 1, design: str = "cube-xyz-20mm") -> list[str]:
        designs = DesignCatalog(self.alpha.store, library_dir())
        service = HubService(self.alpha.store, designs, lambda job, why: None)
        job = service.submit(JobRequest(design=design, quantity=quantity, material="mdf"))
        return [t.task_id for t in self.alpha.store.tasks.find(job_id=job.spec.job_id)]


def equip_beta(beta: Hub) -> None:
    t = now()
    beta.store.catalog.add_maker("maker", t, maker_id="rosa")
    beta.store.catalog.upsert_machine(Machine("rosa/r1", "rosa", MachineKind.CNC, (600.0, 400.0, 90.0),
                                              3.0, frozenset({"MDF"}), state=MachineState.IDLE))  # fmt: skip


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "beta") as beta, edge_of(beta) as edge:
        body = {"name": "beta", "url": edge.url, "key": beta.key.public.text}
        assert alpha.operator().post("/api/v1/peers", json=body).status_code == 201
        beta.add_peer(alpha)
        assert alpha.operator().post("/api/v1/peers/beta/hello").status_code == 200
        assert beta.operator().post("/api/v1/peers/alpha/hello").get_json()["confirmed"]
        equip_beta(beta)
        pair = Pair(alpha, beta, edge, tmp_path)
        assert CapacityService(beta.store, pair.peers(beta), now).advertise() == {"alpha": "sent"}
        yield pair


def test_accepted_tasks_are_held_by_the_peer_under_its_lease(pair: Pair) -> None:
    tasks = pair.submit(quantity=2)
    before = now()
    done = pair.delegator().round()
    assert set(done) == set(tasks)
    assert all(text == f"accepted by beta as its task {BETA_TASK}" for text in done.values())
    for task_id in tasks:
        task = pair.alpha.store.tasks.get(task_id)
        assert (task.state, task.machine_id, task.offer_no) == (TaskState.PREPARING, "peer:beta", 1)
        assert task.lease_until is not None
        assert task.lease_until >= before + timedelta(seconds=PEER_LEASE_S)
    assert peer_tasks_in_flight(pair.alpha.store.db) == {"beta": 2}
    sent = sorted(pair.edge.received, key=lambda t: t.origin_task_id)
    assert [t.origin_task_id for t in sent] == sorted(tasks)
    cube = DesignCatalog(pair.alpha.store, library_dir()).resolve("cube-xyz-20mm").design
    first = sent[0]
    assert (first.offer_no, first.kind, first.material, first.quality, first.lease_s) == (
        1, MachineKind.CNC, "mdf", "normal", PEER_LEASE_S)  # fmt: skip
    assert (first.design.sha256, first.design.license, first.design.author, first.design.mesh) == (
        cube.sha256, "MIT", cube.author, cube.mesh_path.read_bytes())  # fmt: skip
    answers = [t[4] for t in PeerTransfers(pair.alpha.store.db).list("beta")]
    assert answers == [f"accepted as {BETA_TASK}"] * 2
    assert pair.delegator().round() == {}  # nothing queued any more
    assert len(pair.edge.received) == 2
    # the pseudo-machine is never matched nor counted as alpha's capacity
    machine = pair.alpha.store.catalog.get_machine("peer:beta")
    assert machine.state is MachineState.OFFLINE
    assert pair.alpha.store.tasks.claimed_unassigned(now() + timedelta(days=1), 10) == []


def test_a_refused_task_goes_back_to_the_queue_and_cools_down(pair: Pair) -> None:
    (task_id,) = pair.submit()
    pair.edge.answer = wire.TransferAnswer(False, None, "no router free after all")
    delegator = pair.delegator(cool_down_s=1.0)
    assert delegator.round() == {task_id: "refused: no router free after all"}
    task = pair.alpha.store.tasks.get(task_id)
    assert (task.state, task.machine_id, task.offer_no) == (TaskState.QUEUED, None, 1)
    assert delegator.round() == {}  # beta is not asked again yet, and no other peer fits
    assert len(pair.edge.received) == 1
    time.sleep(1.1)
    pair.edge.answer = wire.TransferAnswer(True, BETA_TASK)
    assert delegator.round() == {task_id: f"accepted by beta as its task {BETA_TASK}"}
    assert [t.offer_no for t in pair.edge.received] == [1, 2]
    assert pair.alpha.store.tasks.get(task_id).state is TaskState.PREPARING


def test_an_unreachable_peer_gets_nothing_during_its_cool_down(pair: Pair,
                                                               tmp_path: Path) -> None:  # fmt: skip
    (task_id,) = pair.submit()
    with hub(tmp_path, "gone") as gone:
        dead_url = gone.url  # served by nobody once this block ends
    set_peer_url(pair.alpha, "beta", dead_url)  # beta moved (the operator would re-add it)
    delegator = pair.delegator()
    outcome = delegator.round()[task_id]
    assert outcome.startswith(f"unreachable: cannot reach peer beta at {dead_url}")
    assert pair.alpha.store.tasks.get(task_id).state is TaskState.QUEUED
    assert delegator.round() == {}  # beta cools down: no peer to plan with
    assert pair.edge.received == []


def test_a_part_rejected_after_a_peer_made_it_goes_back_saying_so(pair: Pair) -> None:
    """The transfer tells the peer how many parts it made for the task were rejected, so it
    makes a new one instead of binding the task to the part it made."""
    (task_id,) = pair.submit()
    delegator = pair.delegator()
    assert delegator.round() == {task_id: f"accepted by beta as its task {BETA_TASK}"}
    done = TaskCompleted(machine_id="peer:beta", offer_no=1, grams=3.0, machine_hours=0.2)
    assert isinstance(pair.alpha.store.apply_event(task_id, done, now()), Transition)
    rejected = TaskRejected(reason="damaged", rejected_by="req")
    assert isinstance(pair.alpha.store.apply_event(task_id, rejected, now()), Transition)
    assert delegator.round() == {task_id: f"accepted by beta as its task {BETA_TASK}"}
    assert [(t.offer_no, t.rejected_parts) for t in pair.edge.received] == [(1, 0), (2, 1)]


def test_an_unreachable_peer_is_tried_again_after_its_short_cool_down(pair: Pair,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    (task_id,) = pair.submit()
    edge_url = pair.edge.url
    with hub(tmp_path, "gone") as gone:
        dead_url = gone.url
    set_peer_url(pair.alpha, "beta", dead_url)
    delegator = pair.delegator(unreachable_cool_down_s=0.5)
    assert delegator.round()[task_id].startswith("unreachable:")
    set_peer_url(pair.alpha, "beta", edge_url)  # the link is back
    time.sleep(0.6)
    assert delegator.round() == {task_id: f"accepted by beta as its task {BETA_TASK}"}


def set_peer_url(h: Hub, peer: str, url: str) -> None:
    with h.store.db.write() as s:
        row = s.get(PeerRow, peer)
        assert row is not None
        row.url = url


def test_a_crash_between_offer_and_request_lapses_by_the_offer_sweep(pair: Pair) -> None:
    (task_id,) = pair.submit()
    t = now()
    ensure_peer_machine(pair.alpha.store.db, "beta", t)
    offered = pair.alpha.store.apply_event(
        task_id, TaskOffered(machine_id="peer:beta", offer_s=TRANSFER_S), t)  # fmt: skip
    assert isinstance(offered, Transition)  # ... and the hub died before the POST
    assert peer_tasks_in_flight(pair.alpha.store.db) == {"beta": 1}
    assert pair.alpha.store.expire_offers(t + timedelta(seconds=TRANSFER_S - 1)) == []
    (lapsed,) = pair.alpha.store.expire_offers(t + timedelta(seconds=TRANSFER_S))
    assert (lapsed.task.state, lapsed.task.machine_id) == (TaskState.QUEUED, None)
    assert pair.delegator().round() == {task_id: f"accepted by beta as its task {BETA_TASK}"}
    assert [t.offer_no for t in pair.edge.received] == [2]


def test_a_design_that_may_not_be_redistributed_never_leaves(pair: Pair) -> None:
    closed = Design(design_id="cd" * 32, name="secret", bbox_mm=(40, 40, 10),
                    license="LicenseRef-All-Rights-Reserved")  # fmt: skip
    pair.alpha.store.catalog.add_design(closed, now())
    pair.alpha.store.jobs.submit(JobSpec(job_id="c" * 32, requester="req", design_id=closed.design_id,
                                         kind=MachineKind.CNC, material="MDF", quantity=1,
                                         part_size_mm=(40, 40, 10), hours_per_part=1.0), now())  # fmt: skip
    assert pair.delegator().round() == {}
    assert pair.edge.received == []


def test_a_stale_capacity_or_a_full_cap_sends_nothing(pair: Pair) -> None:
    pair.submit()
    table = PeerCapacities(pair.alpha.store.db)
    old = now() - timedelta(hours=1)
    line = CapacityLine(MachineKind.CNC, "MDF", 1, 1, (600.0, 400.0, 90.0))
    with pair.alpha.store.db.write() as s:  # the summary kept is an hour old
        row = s.get(PeerCapacityRow, "beta")
        assert row is not None
        row.summary = summary_json(CapacitySummary("beta", old, 1, (line,), {}))
        row.computed_at = old
    assert table.get("beta") is not None
    assert pair.delegator().round() == {}
    assert pair.edge.received == []


# -- the hub's own machinery leaves peer-held tasks alone ----------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    store: Store
    dispatcher: Dispatcher
    bus: InMemoryBus
    clock: Clock

    def tick(self) -> None:
        self.dispatcher.tick()
        done = threading.Event()
        self.dispatcher.submit(done.set)
        assert done.wait(30), "dispatcher did not get through its inbox"

    def hand_to_beta(self, task_id: str, *, assign: bool = True) -> int:
        """What the delegator does when beta accepts: offer, accept, assign (peer lease)."""
        t = self.clock.now
        ensure_peer_machine(self.store.db, "beta", t)
        offered = self.store.apply_event(task_id, TaskOffered(machine_id="peer:beta"), t)
        assert isinstance(offered, Transition)
        n = offered.task.offer_no
        events: list[TaskEvent] = [TaskAccepted(machine_id="peer:beta", offer_no=n,
                                                lease_s=PEER_LEASE_S)]  # fmt: skip
        if assign:
            events.append(TaskAssigned(machine_id="peer:beta", offer_no=n, lease_s=PEER_LEASE_S))
        for event in events:
            assert isinstance(self.store.apply_event(task_id, event, t), Transition)
        return n


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = Store(f"sqlite:///{tmp_path / 'alpha.db'}")
    clock = Clock()
    designs = DesignCatalog(store, library_dir())
    artifacts = ArtifactStore(tmp_path / "artifacts")
    bus = InMemoryBus()
    dispatcher = Dispatcher(store, bus, designs, artifacts, "http://alpha.test", lease_s=120.0,
                            offer_timeout_s=60.0, clock=clock, production_grace_s=30.0)  # fmt: skip
    store.catalog.add_design(Design(design_id="ab" * 32, name="plate", bbox_mm=(40, 40, 10),
                                    license="CC0-1.0"), clock.now)  # fmt: skip
    store.jobs.submit(JobSpec(job_id="j" * 32, requester="req", design_id="ab" * 32,
                              kind=MachineKind.CNC, material="MDF", quantity=1,
                              part_size_mm=(40, 40, 10), hours_per_part=1.0, max_attempts=5),
                      clock.now)  # fmt: skip
    dispatcher.start()
    try:
        yield Rig(store, dispatcher, bus, clock)
    finally:
        dispatcher.stop()
        artifacts.close()
        store.close()


def test_a_silent_peer_loses_the_task_by_the_lease_sweep_and_is_never_held(rig: Rig) -> None:
    (task,) = rig.store.tasks.find()
    rig.tick()  # the hub hears from now
    for n in (1, 2, 3, 4):  # more lease expiries in a row than put a machine on hold
        assert rig.hand_to_beta(task.task_id) == n
        rig.clock.now += timedelta(seconds=PEER_LEASE_S - 1)
        rig.tick()
        assert rig.store.tasks.get(task.task_id).state is TaskState.PREPARING
        rig.clock.now += timedelta(seconds=2)
        rig.tick()
        back = rig.store.tasks.get(task.task_id)
        assert (back.state, back.machine_id) == (TaskState.QUEUED, None)
        assert back.attempts[-1].cause is AttemptCause.LEASE_EXPIRED
    assert not rig.store.catalog.get_machine("peer:beta").held
    assert rig.store.holds.held() == {}
    assert rig.bus.published == []  # nothing for an agent "peer:beta": there is none


def test_a_peer_claim_is_no_stranded_claim_for_production(rig: Rig) -> None:
    (task,) = rig.store.tasks.find()
    rig.tick()
    rig.hand_to_beta(task.task_id, assign=False)  # the hub died between accept and assign
    rig.clock.now += timedelta(seconds=300)  # long past the production grace
    assert rig.store.tasks.claimed_unassigned(rig.clock.now, 10) == []
    assert rig.store.tasks.due().claimed_since is None
    rig.tick()
    held = rig.store.tasks.get(task.task_id)
    assert (held.state, held.machine_id, len(held.attempts)) == (TaskState.CLAIMED, "peer:beta", 1)
    assert held.attempts[-1].ended_at is None and rig.bus.published == []


def test_no_agent_can_speak_as_a_peer_machine(rig: Rig) -> None:
    """Agent ids are broker user names of letters, digits, '_' and '-' (no ':'), and an agent's
    machine is always '<agent>/<machine>': no agent event can name 'peer:<hub>'."""
    with pytest.raises(InvalidInput, match="agent must be 1-64 letters"):
        topics.check_id("peer:beta", "agent")
    with pytest.raises(InvalidMessage):
        topics.parse("fabnet/v1/agents/peer:beta/machines/r1/events")
    assert wire.peer_of_machine(hub_machine_id("peer", "beta")) is None
    (task,) = rig.store.tasks.find()
    n = rig.hand_to_beta(task.task_id)
    spoof = TaskProgressed(machine_id=hub_machine_id("peer", "beta"), offer_no=n, fraction=0.5)
    ignored = rig.store.apply_event(task.task_id, spoof, rig.clock.now)
    assert isinstance(ignored, Ignored) and ignored.reason is IgnoreReason.STALE
    assert rig.store.tasks.get(task.task_id).progress == 0.0


def test_beta_hub_itself_takes_the_task(tmp_path: Path) -> None:
    """The same hand-over against beta's own app: its /tasks is the real intake."""
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "beta") as beta:
        alpha.add_peer(beta)
        beta.add_peer(alpha)
        assert alpha.operator().post("/api/v1/peers/beta/hello").status_code == 200
        assert beta.operator().post("/api/v1/peers/alpha/hello").get_json()["confirmed"]
        equip_beta(beta)
        pair = Pair(alpha, beta, Edge(), tmp_path)
        assert CapacityService(beta.store, pair.peers(beta), now).advertise() == {"alpha": "sent"}
        (task_id,) = pair.submit()
        (outcome,) = pair.delegator().round().values()
        assert outcome.startswith("accepted by beta as its task ")
        theirs = outcome.rpartition(" ")[2]
        task = alpha.store.tasks.get(task_id)
        assert (task.state, task.machine_id) == (TaskState.PREPARING, "peer:beta")
        made = beta.store.tasks.get(theirs)
        job = beta.store.jobs.get(made.job_id).spec
        assert (job.requester, job.quantity, made.state) == ("peer:alpha", 1, TaskState.QUEUED)
        assert (tmp_path / "beta" / "designs" / "alpha-cube-xyz-20mm").is_dir()
    assert sorted(p.name for p in library_dir().iterdir()) == CHECKOUT_LIBRARY
