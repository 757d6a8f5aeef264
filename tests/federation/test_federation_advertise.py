"""Capacity advertised between two hubs (each its own Flask app and SQLite database, served on
loopback HTTP): beta's summary, computed from its machines and queued tasks, reaches alpha
signed and is kept as beta's latest; unconfirmed, paused and unreachable peers are skipped or
reported; stale, older, malformed, forged and replayed posts change nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_federation_hubs import SKEW_S, Hub, hub, signed

from fabnet.config import FederationConfig
from fabnet.core.designs import Design
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState
from fabnet.federation import signing as sg
from fabnet.federation.advertise import CAPACITY_PATH, SENT, CapacityService
from fabnet.federation.capacity import DEFAULT_MAX_AGE_S, summarize, summary_json
from fabnet.federation.keys import HubKey
from fabnet.federation.peers import PeerService
from fabnet.store.peers import PeerCapacities, PeerNonces, Peers

Clock = Callable[[], datetime]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "beta") as beta:
        yield alpha, beta


def now() -> datetime:
    return datetime.now(UTC)


def service(h: Hub, tmp_path: Path, clock: Clock = now, max_age_s: float = DEFAULT_MAX_AGE_S,
            ) -> CapacityService:  # fmt: skip
    """The capacity service of hub ``h`` as its tick would build it."""
    key_file = tmp_path / h.name / "federation" / "hub_ed25519.pem"
    peers = PeerService(Peers(h.store.db), FederationConfig(h.name, key_file, SKEW_S), clock)
    return CapacityService(h.store, peers, clock, max_age_s)


def peer_both_ways(a: Hub, b: Hub) -> None:
    a.add_peer(b)
    b.add_peer(a)
    assert a.operator().post(f"/api/v1/peers/{b.name}/hello").status_code == 200
    assert b.operator().post(f"/api/v1/peers/{a.name}/hello").get_json()["confirmed"]


def equip(h: Hub) -> None:
    """Two FDM machines and a CNC router at ``h``, and a queued PLA job of 3 × 0.5 h."""
    t = now()
    h.store.catalog.add_maker("maker", t, maker_id="maker-1")
    for mid, kind, volume, materials, state in (
        ("maker-1/p1", MachineKind.FDM, (220.0, 220.0, 250.0), ("PLA",), MachineState.IDLE),
        ("maker-1/p2", MachineKind.FDM, (300.0, 300.0, 300.0), ("PLA",), MachineState.BUSY),
        ("maker-1/r1", MachineKind.CNC, (600.0, 400.0, 90.0), ("MDF",), MachineState.IDLE),
    ):  # fmt: skip
        h.store.catalog.upsert_machine(
            Machine(mid, "maker-1", kind, volume, 3.0, frozenset(materials), state=state)
        )
    design = Design(design_id="ab" * 32, name="cube", bbox_mm=(20, 20, 20), license="CC0-1.0")
    h.store.catalog.add_design(design, t)
    h.store.jobs.submit(JobSpec(job_id="j" * 32, requester="req", design_id=design.design_id,
                                kind=MachineKind.FDM, material="PLA", quantity=3,
                                part_size_mm=(20, 20, 20), hours_per_part=0.5), t)  # fmt: skip


def post(target: Hub, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    answer = target.app.test_client().post(CAPACITY_PATH, data=body, headers=headers)
    return answer.status_code, dict(answer.get_json() or {})


def state(h: Hub) -> tuple[Any, ...]:
    return tuple(PeerCapacities(h.store.db).list()), PeerNonces(h.store.db).count()


def test_capacity_reaches_confirmed_peers_only(pair: tuple[Hub, Hub], tmp_path: Path) -> None:
    alpha, beta = pair
    equip(beta)
    beta_side = service(beta, tmp_path)
    assert beta_side.advertise() == {}  # no peers yet
    peer_both_ways(alpha, beta)
    with hub(tmp_path, "gamma") as gamma, hub(tmp_path, "delta") as delta:
        beta.add_peer(gamma)  # added, never confirmed: skipped
        peer_both_ways(beta, delta)
        assert beta.operator().post("/api/v1/peers/delta/pause").status_code == 200
        sent = beta_side.advertise()
    assert sent == {"alpha": SENT}
    summary = service(alpha, tmp_path).fresh()["beta"]
    assert replace(beta_side.summary(), computed_at=summary.computed_at) == summary
    assert [(ln.kind.value, ln.material, ln.machines, ln.idle, ln.volume_mm)
            for ln in summary.lines] == [("cnc", "MDF", 1, 1, (600.0, 400.0, 90.0)),
                                         ("fdm", "PLA", 2, 1, (300.0, 300.0, 300.0))]  # fmt: skip
    assert (summary.idle_machines, dict(summary.queued_hours)) == (2, {"PLA": 1.5})
    assert service(alpha, tmp_path).fresh().keys() == {"beta"}
    assert PeerCapacities(beta.store.db).list() == []  # alpha advertised nothing to beta
    listed = alpha.operator().get("/api/v1/peers/capacity").get_json()
    assert [(c["peer"], c["fresh"], c["summary"]["idle_machines"]) for c in listed] == [
        ("beta", True, 2)]  # fmt: skip
    own = beta.operator().get("/api/v1/federation/capacity").get_json()
    assert (own["hub"], own["kinds"], own["materials"]) == ("beta", ["cnc", "fdm"], ["MDF", "PLA"])
    assert alpha.app.test_client().get("/api/v1/peers/capacity").status_code == 401


def test_an_unreachable_peer_is_reported_and_the_others_still_get_it(tmp_path: Path) -> None:
    with ExitStack() as stack:
        alpha = stack.enter_context(hub(tmp_path, "alpha"))
        beta = stack.enter_context(hub(tmp_path, "beta"))
        with hub(tmp_path, "gamma") as gamma:
            peer_both_ways(beta, gamma)
        peer_both_ways(alpha, beta)  # gamma has shut down since
        sent = service(beta, tmp_path).advertise()
        assert sent["alpha"] == SENT
        assert sent["gamma"].startswith(f"cannot reach peer gamma at {gamma.url}")
        assert service(alpha, tmp_path).fresh().keys() == {"beta"}


def capacity_post(key: HubKey, as_hub: str, payload: dict[str, Any],
                  ) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    return signed(key, as_hub, payload, path=CAPACITY_PATH)


def test_stale_older_and_malformed_summaries_are_not_kept(pair: tuple[Hub, Hub],
                                                          tmp_path: Path) -> None:  # fmt: skip
    alpha, beta = pair
    alpha.add_peer(beta)
    t = now()
    old = summary_json(
        summarize("beta", [], {"PLA": 1.0}, t - timedelta(seconds=DEFAULT_MAX_AGE_S + 5))
    )
    status, answer = post(alpha, *capacity_post(beta.key, "beta", old))
    assert (status, answer["stored"], answer["why"]) == (200, False, "stale: older than 600 s")
    assert PeerCapacities(alpha.store.db).get("beta") is None
    newer = summary_json(summarize("beta", [], {"PLA": 2.0}, t))
    assert post(alpha, *capacity_post(beta.key, "beta", newer))[1]["stored"] is True
    earlier = summary_json(summarize("beta", [], {"PLA": 3.0}, t - timedelta(seconds=30)))
    status, answer = post(alpha, *capacity_post(beta.key, "beta", earlier))
    assert (status, answer["stored"]) == (200, False)  # delayed: the newer one stays
    kept = PeerCapacities(alpha.store.db).get("beta")
    assert kept is not None and kept.summary["queued_hours"] == {"PLA": 2.0}
    before = tuple(PeerCapacities(alpha.store.db).list())
    future = summary_json(summarize("beta", [], {}, t + timedelta(seconds=2 * SKEW_S)))
    for payload, words in ((future, "is in the future by more than 60 s"),
                           ({**newer, "hub": "gamma"}, "hub must be the sender's name 'beta'"),
                           ({**newer, "lines": [{"kind": "laser"}]}, "lines[0].kind must be")):  # fmt: skip
        status, answer = post(alpha, *capacity_post(beta.key, "beta", payload))
        assert status == 400 and words in answer["message"], answer
    assert tuple(PeerCapacities(alpha.store.db).list()) == before
    later = service(alpha, tmp_path, clock=lambda: t + timedelta(seconds=DEFAULT_MAX_AGE_S + 1))
    assert later.fresh() == {}  # kept, but too old to believe by then


def test_forged_and_replayed_capacity_posts_change_nothing(pair: tuple[Hub, Hub]) -> None:
    alpha, beta = pair
    alpha.add_peer(beta)
    mallory = HubKey.generate()
    claim = summary_json(summarize("beta", [], {"PLA": 99.0}, now()))
    before = state(alpha)
    body, headers = capacity_post(mallory, "beta", claim)
    status, answer = post(alpha, body, headers)
    assert status == 401 and answer["message"].startswith(f"key {mallory.key_id} is not beta's")
    body, headers = capacity_post(beta.key, "beta", claim)
    altered = body.replace(b"99.0", b"9999.0")
    assert post(alpha, altered, headers)[0] == 401
    assert post(alpha, altered, {**headers, sg.DIGEST_HEADER: sg.content_digest(altered)})[0] == 401
    unsigned = alpha.app.test_client().post(CAPACITY_PATH, data=json.dumps(claim))
    assert unsigned.status_code == 401
    assert state(alpha) == before
    assert post(alpha, body, headers) == (200, {"hub": "alpha", "peer": "beta", "stored": True})
    after = state(alpha)
    status, answer = post(alpha, body, headers)  # the same request again
    assert status == 401 and answer["message"].startswith("replayed request")
    assert state(alpha) == after
    assert alpha.operator().post("/api/v1/peers/beta/pause").status_code == 200
    status, answer = post(alpha, *capacity_post(beta.key, "beta", claim))
    assert (status, answer["message"]) == (403, "peering with beta is paused on this hub")
    assert state(alpha) == after
