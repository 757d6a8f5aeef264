"""The overflow rule over its cases: when a task goes abroad at all (no local machine, a missed
deadline, a long wait), which peers are refused and why (state, confirmation, kind, material,
cap, license, stale or missing or unfitting capacity), the deterministic choice; and, drawn by
hypothesis, that the chosen peer is never one the license, the cap or the terms forbid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind
from fabnet.errors import InvalidInput
from fabnet.federation.capacity import CapacityLine, CapacitySummary
from fabnet.federation.licensing import may_send
from fabnet.federation.overflow import (
    LocalSlot,
    OverflowPolicy,
    OverflowTask,
    PeerOption,
    choose_peer,
    could_take,
    idle_fitting,
)
from fabnet.store.peers import Peer, PeerState, PeerTerms

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
FDM, CNC = MachineKind.FDM, MachineKind.CNC
POLICY = OverflowPolicy(max_wait=timedelta(hours=6), capacity_max_age=timedelta(minutes=10))
CNC_TASK = OverflowTask(
    "t1", CNC, "MDF", (300.0, 200.0, 20.0), 2.0, None, timedelta(0), "CC-BY-4.0"
)


def peer(name: str, *, kinds: tuple[str, ...] = ("fdm", "cnc"), materials: tuple[str, ...] = (),
         cap: int = 5, charges: bool = False, state: PeerState = PeerState.ACTIVE,
         confirmed: bool = True) -> Peer:  # fmt: skip
    hello = NOW if confirmed else None
    return Peer(name, f"https://{name}.example", "k" * 43 + "=", "kid", PeerTerms(materials, kinds,
                cap, charges), state, NOW, NOW, hello, NOW)  # fmt: skip


def capacity(hub: str, *lines: CapacityLine, age: timedelta = timedelta(0)) -> CapacitySummary:
    idle = sum(line.idle for line in lines)
    return CapacitySummary(hub, NOW - age, idle, lines, {})


def router(idle: int = 1, volume: tuple[float, float, float] = (600.0, 400.0, 90.0),
           material: str = "MDF") -> CapacityLine:  # fmt: skip
    return CapacityLine(CNC, material, max(idle, 1), idle, volume)


def option(name: str, *lines: CapacityLine, in_flight: int = 0, age: timedelta = timedelta(0),
           **terms: object) -> PeerOption:  # fmt: skip
    return PeerOption(peer(name, **terms), in_flight, capacity(name, *lines, age=age))  # type: ignore[arg-type]


def test_a_task_home_can_serve_stays_home() -> None:
    free_now = [LocalSlot("m1", 1.0, NOW)]
    decision = choose_peer(CNC_TASK, free_now, [option("beta", router())], NOW, POLICY)
    assert (decision.peer, decision.reason) == (None, "a local machine can take it in time")
    in_time = _task(deadline=NOW + timedelta(hours=3))
    assert choose_peer(in_time, free_now, [option("beta", router())], NOW, POLICY).peer is None


def test_no_local_machine_a_missed_deadline_or_a_long_wait_send_it_abroad() -> None:
    peers = [option("beta", router())]
    decision = choose_peer(CNC_TASK, [], peers, NOW, POLICY)
    assert decision.peer == "beta"
    assert decision.reason == "no local machine can ever take it; beta has 1 idle fitting machines"
    busy = [LocalSlot("m1", 2.0, NOW + timedelta(hours=2))]  # done at NOW + 3 h
    late = _task(deadline=NOW + timedelta(hours=2, minutes=59))
    decision = choose_peer(late, busy, peers, NOW, POLICY)
    assert decision.peer == "beta" and decision.reason.startswith("no local machine can finish")
    assert (
        choose_peer(_task(deadline=NOW + timedelta(hours=3)), busy, peers, NOW, POLICY).peer is None
    )
    waited = _task(waited=timedelta(hours=6, seconds=1))
    decision = choose_peer(waited, busy, peers, NOW, POLICY)
    assert decision.peer == "beta" and decision.reason.startswith("it waited 6:00:01 here")
    assert choose_peer(_task(waited=timedelta(hours=6)), busy, peers, NOW, POLICY).peer is None


def _task(**change: object) -> OverflowTask:
    return OverflowTask(**{**CNC_TASK.__dict__, **change})


def test_each_reason_a_peer_is_refused() -> None:
    peers = [
        option("a-paused", router(), state=PeerState.PAUSED),
        option("b-unconfirmed", router(), confirmed=False),
        option("c-fdm-only", router(), kinds=("fdm",)),
        option("d-pla-only", router(), materials=("PLA",)),
        option("e-full", router(), in_flight=2, cap=2),
        option("f-stale", router(), age=timedelta(minutes=10, seconds=1)),
        PeerOption(peer("g-silent"), 0, None),
        option("h-small", router(volume=(250.0, 250.0, 90.0))),
        option("i-busy", router(idle=0)),
        option("j-plywood", router(material="Plywood")),
    ]
    decision = choose_peer(CNC_TASK, [], peers, NOW, POLICY)
    assert decision.peer is None
    assert decision.reason == "no local machine can ever take it, but no peer can take it"
    assert dict(decision.refused) == {
        "a-paused": "the peering is paused",
        "b-unconfirmed": "the peering is not confirmed both ways",
        "c-fdm-only": "cnc is not among the kinds shared (fdm)",
        "d-pla-only": "MDF is not among the materials shared (PLA)",
        "e-full": "2 tasks in flight, at its cap of 2",
        "f-stale": "no fresh capacity advertised",
        "g-silent": "no fresh capacity advertised",
        "h-small": "no idle cnc machine with MDF that fits the part",
        "i-busy": "no idle cnc machine with MDF that fits the part",
        "j-plywood": "no idle cnc machine with MDF that fits the part",
    }


def test_the_license_decides_which_peers_may_have_it() -> None:
    paid, free = option("beta", router(3), charges=True), option("gamma", router(1))
    assert choose_peer(CNC_TASK, [], [paid, free], NOW, POLICY).peer == "beta"  # more idle
    nc = choose_peer(_task(license="CC-BY-NC-4.0"), [], [paid, free], NOW, POLICY)
    assert nc.peer == "gamma"
    assert nc.refused == (("beta", "CC-BY-NC-4.0 is non-commercial and the peer charges "
                                   "credits for the work"),)  # fmt: skip
    for closed in ("NOASSERTION", "LicenseRef-All-Rights-Reserved"):
        decision = choose_peer(_task(license=closed), [], [paid, free], NOW, POLICY)
        assert decision.peer is None and len(decision.refused) == 2


def test_the_choice_is_most_idle_then_name_whatever_the_order() -> None:
    peers = [option("delta", router(2)), option("beta", router(2)), option("gamma", router(1),
             router(1, (700.0, 500.0, 50.0)))]  # fmt: skip
    assert choose_peer(CNC_TASK, [], peers, NOW, POLICY).peer == "beta"
    assert choose_peer(CNC_TASK, [], list(reversed(peers)), NOW, POLICY).peer == "beta"
    assert idle_fitting(CNC_TASK, peers[2].capacity) == 2  # type: ignore[arg-type]
    more = option("zeta", router(2), router(1, (700.0, 500.0, 50.0)))
    assert choose_peer(CNC_TASK, [], [*peers, more], NOW, POLICY).peer == "zeta"


def test_which_local_machines_could_ever_take_it() -> None:
    def m(kind: MachineKind = CNC, volume: tuple[float, float, float] = (600, 400, 90),
          materials: tuple[str, ...] = ("mdf",), held: bool = False,
          max_hours: float | None = None) -> Machine:  # fmt: skip
        return Machine("x/1", "x", kind, volume, 3.0, frozenset(materials),
                       MachinePolicy(max_task_hours=max_hours), held=held)  # fmt: skip

    assert could_take(m(), CNC_TASK)  # materials compare without case
    assert could_take(m(volume=(200, 300, 20)), CNC_TASK)  # turned 90° about Z
    for wrong in (m(FDM), m(volume=(250, 250, 90)), m(materials=("Plywood",)), m(held=True),
                  m(max_hours=1.5)):  # fmt: skip
        assert not could_take(wrong, CNC_TASK)


def test_the_policy_wants_positive_times() -> None:
    with pytest.raises(InvalidInput, match="max_wait must be > 0"):
        OverflowPolicy(max_wait=timedelta(0))


LICENSES = ("CC0-1.0", "MIT", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "NOASSERTION",
            "LicenseRef-All-Rights-Reserved", "MIT OR CC-BY-NC-4.0", "CC-BY-NC-4.0 AND MIT",
            "not a license ((")  # fmt: skip
MATERIALS = ("PLA", "MDF", "PETG")


BREAKS = (None, None, None, None, "paused", "removed", "unconfirmed", "kind", "material", "cap",
          "stale", "silent")  # fmt: skip


@st.composite
def peer_options(draw: st.DrawFn, name: str, kind: MachineKind, material: str) -> PeerOption:
    """A peer breaking at most one rule (else a willing peer is too rare to draw), with drawn
    charges, tasks in flight and capacity lines, the first of the task's kind and material."""
    broken = draw(st.sampled_from(BREAKS))
    in_flight = draw(st.integers(0, 2))
    other_kind = CNC if kind is FDM else FDM
    other_material = next(m for m in MATERIALS if m != material)
    p = peer(name, kinds=(other_kind.value,) if broken == "kind" else ("fdm", "cnc"),
             materials=(other_material,) if broken == "material" else draw(st.sampled_from(((),
                        MATERIALS))),
             cap=in_flight if broken == "cap" else in_flight + draw(st.integers(1, 2)),
             charges=draw(st.booleans()),
             state={"paused": PeerState.PAUSED, "removed": PeerState.REMOVED}.get(
                 broken or "", PeerState.ACTIVE),
             confirmed=broken != "unconfirmed")  # fmt: skip
    volumes = st.tuples(*[st.sampled_from((100.0, 400.0))] * 3)
    line = st.builds(CapacityLine, st.sampled_from([FDM, CNC]), st.sampled_from(MATERIALS),
                     st.just(3), st.integers(0, 3), volumes)  # fmt: skip
    own = CapacityLine(kind, material, 3, draw(st.integers(0, 3)), draw(volumes))
    lines = [own, *draw(st.lists(line, max_size=3))]
    age = timedelta(minutes=11 if broken == "stale" else draw(st.integers(0, 10)))
    summary = None if broken == "silent" else capacity(name, *lines, age=age)
    return PeerOption(p, in_flight, summary)


@settings(max_examples=300, deadline=None)
@given(
    license=st.sampled_from(LICENSES),
    kind=st.sampled_from([FDM, CNC]),
    material=st.sampled_from(MATERIALS),
    size=st.tuples(*[st.sampled_from((50.0, 300.0))] * 3),
    local=st.booleans(),
    names=st.lists(st.sampled_from("abcdef"), max_size=5, unique=True),
    data=st.data(),
)
def test_never_a_peer_the_license_the_cap_or_the_terms_forbid(
    license: str, kind: MachineKind, material: str, size: tuple[float, float, float],
    local: bool, names: list[str], data: st.DataObject,
) -> None:  # fmt: skip
    options = [data.draw(peer_options(n, kind, material), label=n) for n in names]
    task = OverflowTask("t", kind, material, size, 1.0, None, timedelta(0), license)
    slots = [LocalSlot("m", 1.0, NOW)] if local else []
    decision = choose_peer(task, slots, options, NOW, POLICY)
    if local:
        assert decision.peer is None  # home serves it: never abroad
        return
    chosen = [o for o in options if o.peer.name == decision.peer]
    allowed = [o for o in options if o.peer.name not in dict(decision.refused)]
    assert len(chosen) == (1 if decision.peer else 0) and bool(allowed) == bool(chosen)
    for o in chosen:
        terms = o.peer.terms
        assert may_send(license, terms.charges_credits).allowed
        assert o.in_flight < terms.max_in_flight
        assert o.peer.state is PeerState.ACTIVE and o.peer.confirmed
        assert kind.value in terms.kinds and (not terms.materials or material in terms.materials)
        assert o.capacity is not None and o.capacity.fresh(NOW, POLICY.capacity_max_age)
        best = max(idle_fitting(task, a.capacity) for a in allowed if a.capacity is not None)
        assert idle_fitting(task, o.capacity) == best > 0
    if decision.peer is None:
        assert len(decision.refused) == len(options)  # every peer was refused, each with a reason
