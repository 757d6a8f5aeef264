"""A peer hub (beta) taking tasks from an origin (alpha): a transfer becomes a local job of
quantity one for requester ``peer:alpha`` with the design imported (license and author kept);
the same transfer again answers the same task; a higher offer re-binds, a lower one is stale,
a dead local task gets a fresh job; every refusal (terms, material, license, cap, mesh)
changes nothing (rows and library folders counted); two API processes receiving the same
transfer at once on PostgreSQL bind it once; and the signed HTTP endpoint between two
in-process hubs answers it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_federation_hubs import SKEW_S, Hub, hub, signed

from fabnet.config import FederationConfig
from fabnet.core.states import MachineKind
from fabnet.errors import InvalidInput
from fabnet.federation import wire
from fabnet.federation.client import PeerClient
from fabnet.federation.inbound import Verified
from fabnet.federation.intake import Intake
from fabnet.federation.keys import HubKey
from fabnet.federation.peers import PeerService, check_terms
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService
from fabnet.library.design import load_design
from fabnet.store import Store
from fabnet.store.foreign_tasks import ForeignTasks
from fabnet.store.peers import Peer, Peers

CUBE = load_design("cube-xyz-20mm")  # MIT, from the seeded library (read only)
ORIGIN = "alpha"


def package(**changes: Any) -> wire.DesignPackage:
    made = wire.DesignPackage(
        slug=CUBE.slug,
        name=CUBE.name,
        author=CUBE.author,
        license=CUBE.license,
        version=CUBE.version,
        filename=CUBE.mesh_path.name,
        mesh=CUBE.mesh_path.read_bytes(),
        sha256=CUBE.sha256,
        description="a calibration cube",
        source_url="https://example.org/cube",
    )
    return replace(made, **changes)


def transfer(task: str = "a" * 32, offer_no: int = 1, **changes: Any) -> dict[str, Any]:
    design = changes.pop("design", package())
    made = wire.TaskTransfer(
        origin_task_id=task,
        offer_no=offer_no,
        origin_job_id="j" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quality="normal",
        deadline=datetime(2031, 1, 1, tzinfo=UTC),
        lease_s=900.0,
        design=design,
    )
    return wire.transfer_json(replace(made, **changes))


@dataclass
class Beta:
    """The receiving hub's parts, over its own database and library folder."""

    store: Store
    intake: Intake
    library: Path
    peers: PeerService

    @property
    def foreign(self) -> ForeignTasks:
        return self.intake.foreign

    def peer(self) -> Peer:
        found = Peers(self.store.db).get(ORIGIN)
        assert found is not None
        return found

    def receive(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.intake.receive(Verified(self.peer(), "nonce"), payload)

    def state(self) -> tuple[Any, ...]:
        """What a transfer can change: bindings, jobs, designs, library folders."""
        return (
            self.foreign.count(),
            len(self.store.jobs.find(limit=1000)),
            len(self.store.catalog.list_designs()),
            sorted(p.name for p in self.library.iterdir() if not p.name.startswith(".")),
        )


BETA_MAX_ATTEMPTS = 4


def make_beta(url: str, library: Path, *, add_alpha: bool = True,
              alpha_url: str = "http://127.0.0.1:9", alpha_key: str | None = None,
              **terms: Any) -> Beta:  # fmt: skip
    store = Store(url)
    designs = DesignCatalog(store, library)
    service = HubService(store, designs, lambda job, why: None, max_attempts=BETA_MAX_ATTEMPTS)
    config = FederationConfig("beta", library.parent / "beta.pem", SKEW_S)
    peers = PeerService(Peers(store.db), config, lambda: datetime.now(UTC))
    if add_alpha:
        shared = check_terms(terms.get("materials", []), terms.get("kinds", ["fdm", "cnc"]),
                             terms.get("max_in_flight", 10), terms.get("charges", True))  # fmt: skip
        peers.add(ORIGIN, alpha_url, alpha_key or HubKey.generate().public.text, shared)
    intake = Intake(service, peers, lambda: datetime.now(UTC))
    return Beta(store, intake, library, peers)


@contextmanager
def beta_hub(tmp_path: Path, **terms: Any) -> Iterator[Beta]:
    library = tmp_path / "beta-designs"
    library.mkdir()
    beta = make_beta(f"sqlite:///{tmp_path / 'beta.db'}", library, **terms)
    try:
        yield beta
    finally:
        beta.store.close()


@pytest.fixture
def beta(tmp_path: Path) -> Iterator[Beta]:
    with beta_hub(tmp_path) as b:
        yield b


def test_a_transfer_becomes_a_local_job_with_the_design_imported(beta: Beta) -> None:
    answer = beta.receive(transfer())
    assert answer["accepted"] and answer["task_id"], answer
    task = beta.store.tasks.get(answer["task_id"])
    job = beta.store.jobs.get(task.job_id).spec
    assert (job.requester, job.material, job.quantity, job.design_id, str(job.quality)) == (
        "peer:alpha", "PLA", 1, CUBE.sha256, "normal")  # fmt: skip
    assert job.deadline == datetime(2031, 1, 1, tzinfo=UTC)
    assert job.max_attempts == BETA_MAX_ATTEMPTS  # beta's [hub] max_attempts, as its own jobs
    imported = beta.intake._designs.get(CUBE.sha256).design
    assert imported.slug == "alpha-cube-xyz-20mm"
    assert imported.directory is not None and imported.directory.parent == beta.library
    assert (imported.name, imported.author, imported.license, imported.version) == (
        CUBE.name, CUBE.author, "MIT", CUBE.version)  # fmt: skip
    assert (imported.description, imported.source_url) == ("a calibration cube",
                                                           "https://example.org/cube")  # fmt: skip
    binding = beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and binding.is_open
    assert (binding.offer_no, binding.local_task_id, binding.license) == (1, task.task_id, "MIT")


def test_the_same_transfer_twice_is_one_job(beta: Beta) -> None:
    first = beta.receive(transfer())
    before = beta.state()
    assert beta.receive(transfer()) == first
    assert beta.state() == before
    assert len(beta.store.jobs.find(requester="peer:alpha")) == 1


def test_a_higher_offer_rebinds_and_a_lower_one_is_stale(beta: Beta) -> None:
    first = beta.receive(transfer(offer_no=2))
    again = beta.receive(transfer(offer_no=5))
    assert again == first  # the same part, held under the newer offer
    binding = beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and binding.offer_no == 5
    before = beta.state()
    stale = beta.receive(transfer(offer_no=3))
    assert not stale["accepted"] and "stale" in stale["why"], stale
    assert beta.state() == before
    assert beta.foreign.get(ORIGIN, "a" * 32) == binding


def test_a_dead_local_task_gets_a_fresh_job(beta: Beta) -> None:
    first = beta.receive(transfer())
    job_id = beta.store.tasks.get(first["task_id"]).job_id
    beta.store.jobs.cancel(job_id, datetime.now(UTC), "operator cancelled it here")
    assert beta.receive(transfer()) == first  # the same offer: the same answer
    fresh = beta.receive(transfer(offer_no=2))
    assert fresh["accepted"] and fresh["task_id"] != first["task_id"]
    binding = beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and (binding.generation, binding.offer_no) == (2, 2)
    assert len(beta.store.jobs.find(requester="peer:alpha")) == 2
    assert beta.foreign.count() == 1


NOT_A_MESH = b"solid nothing\nendsolid nothing\n"


@pytest.mark.parametrize(
    ("terms", "changes", "why"),
    [
        ({"kinds": ["cnc"]}, {}, "fdm work is not shared with alpha"),
        ({"materials": ["PETG"]}, {}, "material PLA is not shared with alpha"),
        ({}, {"material": "unobtainium"}, "material 'unobtainium' is unknown here"),
        ({}, {"kind": MachineKind.CNC}, "material PLA is fdm work, not cnc"),
        ({}, {"design": package(license="LicenseRef-proprietary")}, "does not allow"),
        ({}, {"design": package(license="NOASSERTION")}, "does not allow"),
        ({"charges": True}, {"design": package(license="CC-BY-NC-4.0")}, "non-commercial"),
        ({"max_in_flight": 0}, {}, "has 0 tasks in flight here already"),
        ({}, {"design": package(mesh=NOT_A_MESH, sha256=__import__("hashlib").sha256(
            NOT_A_MESH).hexdigest())}, "design cube-xyz-20mm:"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(tmp_path: Path, terms: dict[str, Any], changes: dict[str, Any],
                                 why: str) -> None:  # fmt: skip
    with beta_hub(tmp_path, **terms) as beta:
        before = beta.state()
        answer = beta.receive(transfer(**changes))
        assert not answer["accepted"] and answer["task_id"] is None
        assert why in answer["why"], answer["why"]
        assert beta.state() == before


def test_a_non_commercial_design_is_taken_by_a_peer_charging_nothing(tmp_path: Path) -> None:
    with beta_hub(tmp_path, charges=False) as beta:
        answer = beta.receive(transfer(design=package(license="CC-BY-NC-4.0")))
        assert answer["accepted"], answer


def test_the_cap_in_flight_counts_open_bindings_but_not_a_repeat(tmp_path: Path) -> None:
    with beta_hub(tmp_path, max_in_flight=1) as beta:
        first = beta.receive(transfer("a" * 32))
        assert beta.receive(transfer("a" * 32)) == first
        second = beta.receive(transfer("b" * 32))
        assert not second["accepted"] and "1 tasks in flight" in second["why"]


@pytest.mark.parametrize(
    "payload",
    [
        {**transfer(), "offer_no": 0},
        {**transfer(), "quality": "perfect"},
        {**transfer(), "origin_task_id": "../../etc"},
        {**transfer(), "design": {**transfer()["design"], "sha256": "0" * 64}},
    ],
)
def test_a_malformed_transfer_is_invalid_input(beta: Beta, payload: dict[str, Any]) -> None:
    before = beta.state()
    with pytest.raises(InvalidInput):
        beta.receive(payload)
    assert beta.state() == before


def test_two_processes_receiving_the_same_transfer_bind_it_once(tmp_path: Path,
                                                                pg_url: str) -> None:  # fmt: skip
    library = tmp_path / "shared-designs"
    library.mkdir()
    first = make_beta(pg_url, library)
    second = make_beta(pg_url, library, add_alpha=False)
    try:
        for n in range(6):
            task = f"{n:032x}"
            barrier = threading.Barrier(2)
            answers: list[dict[str, Any]] = []

            threads = [threading.Thread(target=take, args=(b, task, barrier, answers))
                       for b in (first, second)]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert len(answers) == 2 and answers[0] == answers[1], answers
            assert answers[0]["accepted"]
        assert len(first.store.jobs.find(requester="peer:alpha")) == 6
        assert first.foreign.count() == 6
        assert [p.name for p in library.iterdir() if not p.name.startswith(".")] == [
            "alpha-cube-xyz-20mm"
        ]
    finally:
        first.store.close()
        second.store.close()


def take(beta: Beta, task: str, barrier: threading.Barrier, answers: list[Any]) -> None:
    barrier.wait()
    answers.append(beta.receive(transfer(task)))


@contextmanager
def linked_hubs(tmp_path: Path, **terms: Any) -> Iterator[tuple[Hub, Hub]]:
    """alpha and beta, each the other's confirmed peer (``terms``: beta's for alpha)."""
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "beta") as beta:
        alpha.add_peer(beta)
        beta.add_peer(alpha, **terms)
        assert alpha.operator().post("/api/v1/peers/beta/hello").status_code == 200
        assert beta.operator().post("/api/v1/peers/alpha/hello").status_code == 200
        yield alpha, beta


def client_of(hub: Hub) -> PeerClient:
    return PeerClient(hub.name, hub.key, SKEW_S, lambda: datetime.now(UTC))


def test_a_signed_transfer_between_two_hubs(tmp_path: Path) -> None:
    with linked_hubs(tmp_path) as (alpha, beta):
        to_beta = Peers(alpha.store.db).get("beta")
        assert to_beta is not None
        answer = client_of(alpha).post(to_beta, wire.TASKS_PATH, transfer())
        parsed = wire.answer_from_json(answer)
        assert parsed.accepted and parsed.task_id
        assert beta.store.jobs.find(requester="peer:alpha")[0].spec.design_id == CUBE.sha256
        assert client_of(alpha).post(to_beta, wire.TASKS_PATH, transfer()) == answer
        late = datetime.now(UTC) + timedelta(days=1)
        refused = client_of(alpha).post(to_beta, wire.TASKS_PATH,
                                        transfer("c" * 32, material="unobtainium",
                                                 deadline=late))  # fmt: skip
        assert refused["accepted"] is False and "unknown here" in refused["why"]


def test_a_forged_or_replayed_transfer_is_refused_and_makes_nothing(tmp_path: Path) -> None:
    with linked_hubs(tmp_path) as (alpha, beta):
        body, headers = signed(alpha.key, "alpha", transfer(), path=wire.TASKS_PATH)
        client = beta.app.test_client()
        assert client.post(wire.TASKS_PATH, data=body, headers=headers).status_code == 200
        again = client.post(wire.TASKS_PATH, data=body, headers=headers)
        assert again.status_code == 401
        assert again.get_json()["message"].startswith("replayed request")
        body, headers = signed(HubKey.generate(), "alpha", transfer("d" * 32),
                               path=wire.TASKS_PATH)  # fmt: skip
        forged = client.post(wire.TASKS_PATH, data=body, headers=headers)
        assert forged.status_code == 401
        assert len(beta.store.jobs.find(requester="peer:alpha")) == 1
