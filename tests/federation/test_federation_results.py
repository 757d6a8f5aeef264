"""The origin's results inbox over a real store: beta's reports about tasks alpha handed it move
those tasks through the normal state machine — progress extends the peer lease, a completion is
counted once (the same report again is a duplicate), a report for an offer alpha took back is
stale yet recorded and settled, and a report about a task never sent to beta (held by gamma or
a local machine, or unknown), or with impossible figures, is refused with nothing changed. The
done-once test also runs on PostgreSQL; one test goes through alpha's signed endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg_support import fresh_pg_database
from sqlalchemy import func, select
from test_federation_hubs import SKEW_S, hub

from fabnet.config import FederationConfig
from fabnet.core.designs import Design
from fabnet.core.events import TaskAccepted, TaskAssigned, TaskOffered, TaskStarted
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState, TaskState
from fabnet.core.tasks import Transition
from fabnet.federation import wire
from fabnet.federation.client import PeerClient
from fabnet.federation.inbound import Verified
from fabnet.federation.keys import HubKey
from fabnet.federation.peers import PeerService
from fabnet.federation.results import ResultsInbox, report_event_id
from fabnet.federation.settlement import peer_balances
from fabnet.federation.wire import ReportOutcome, ReportState, TaskReport
from fabnet.store import Store
from fabnet.store.models import EventRow, LedgerRow
from fabnet.store.peer_reports import PeerReports, PeerTransfers, ensure_peer_machine
from fabnet.store.peers import Peers, PeerTerms

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
LEASE_S = 900.0
DESIGN = "ab" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def open_store(url: str) -> Iterator[Store]:
    s = Store(url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(f"sqlite:///{tmp_path / 'alpha.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield from open_store(f"sqlite:///{tmp_path / 'alpha.db'}")
    else:
        for url in fresh_pg_database():
            yield from open_store(url)


def setup_alpha(store: Store, tasks: int = 3) -> list[str]:
    """Peers beta and gamma, a local router, and a CNC job of ``tasks`` 40x40x10 mm parts."""
    peers = Peers(store.db)
    for name in ("beta", "gamma"):
        peers.add(name, f"https://{name}.example", "k" * 43 + "=", "kid", PeerTerms(), T0)
    store.catalog.add_maker("maker", T0, maker_id="k1")
    store.catalog.upsert_machine(Machine("k1/r1", "k1", MachineKind.CNC, (600.0, 400.0, 90.0),
                                         3.0, frozenset({"MDF"}), state=MachineState.IDLE))  # fmt: skip
    store.catalog.add_design(Design(design_id=DESIGN, name="plate", bbox_mm=(40, 40, 10),
                                    license="CC0-1.0"), T0)  # fmt: skip
    spec = JobSpec(job_id="j" * 32, requester="req", design_id=DESIGN, kind=MachineKind.CNC,
                   material="MDF", quantity=tasks, part_size_mm=(40.0, 40.0, 10.0),
                   hours_per_part=2.0, max_attempts=5)  # fmt: skip
    store.jobs.submit(spec, T0)
    return [t.task_id for t in store.tasks.find(job_id=spec.job_id)]


def hand(store: Store, task_id: str, holder: str, at: datetime = T0) -> int:
    """What the delegator does for a peer that accepts (or an agent, for a local machine)."""
    peer = wire.peer_of_machine(holder)
    if peer is not None:
        ensure_peer_machine(store.db, peer, at)
    offered = store.apply_event(task_id, TaskOffered(machine_id=holder), at)
    assert isinstance(offered, Transition)
    n = offered.task.offer_no
    if peer is not None:
        PeerTransfers(store.db).sending(peer, task_id, n, at)
    for event in (TaskAccepted(machine_id=holder, offer_no=n, lease_s=LEASE_S),
                  TaskAssigned(machine_id=holder, offer_no=n, lease_s=LEASE_S)):  # fmt: skip
        assert isinstance(store.apply_event(task_id, event, at), Transition)
    return n


def from_peer(store: Store, name: str) -> Verified:
    peer = Peers(store.db).get(name)
    assert peer is not None
    return Verified(peer, "nonce")


def send(
    inbox: ResultsInbox, store: Store, peer: str, *reports: TaskReport
) -> list[tuple[str, str]]:
    answer = inbox.receive(from_peer(store, peer), wire.reports_json(list(reports)))
    return [(r.outcome.value, r.why) for r in wire.results_from_json(answer)]


def done(task_id: str, n: int, report_id: str = "", **figures: Any) -> TaskReport:
    values = {"grams": 30.0, "machine_hours": 1.5, "charged_mc": 4200, **figures}
    return TaskReport(report_id or f"{task_id}:{n}:done", task_id, n, ReportState.DONE, 1.0,
                      **values)  # fmt: skip


def counts(store: Store) -> tuple[int, int]:
    with store.db.read() as s:
        events = s.scalar(select(func.count()).select_from(EventRow))
        ledger = s.scalar(select(func.count()).select_from(LedgerRow))
    return int(events or 0), int(ledger or 0)


def test_progress_extends_the_peer_lease_and_started_runs_the_task(store: Store) -> None:
    (task_id, *_) = setup_alpha(store)
    n = hand(store, task_id, "peer:beta")
    clock = Clock()
    inbox = ResultsInbox(store, clock, peer_lease_s=LEASE_S)
    clock.now = T0 + timedelta(seconds=600)
    beat = TaskReport("p1", task_id, n, ReportState.PROGRESS, fraction=0.0)
    assert send(inbox, store, "beta", beat) == [("applied", "")]
    task = store.tasks.get(task_id)
    assert task.lease_until == clock.now + timedelta(seconds=LEASE_S)
    assert store.expire_leases(T0 + timedelta(seconds=LEASE_S + 1)) == []  # extended past it
    started = TaskReport("s1", task_id, n, ReportState.STARTED)
    clock.now += timedelta(seconds=60)
    assert send(inbox, store, "beta", started, TaskReport("p2", task_id, n, ReportState.PROGRESS,
                                                          fraction=0.4)) == [("applied", "")] * 2  # fmt: skip
    task = store.tasks.get(task_id)
    assert (task.state, task.progress) == (TaskState.RUNNING, 0.4)
    again = TaskReport("s2", task_id, n, ReportState.STARTED)  # resent after a restart
    (outcome,) = send(inbox, store, "beta", again)
    assert outcome[0] == "duplicate" and outcome[1].startswith("wrong_state")
    assert store.tasks.get(task_id).state is TaskState.RUNNING  # the work goes on
    assert PeerReports(store.db).list() == []  # only final reports are recorded


def test_a_completion_is_counted_once(any_store: Store) -> None:
    store = any_store
    (task_id, *_) = setup_alpha(store)
    n = hand(store, task_id, "peer:beta")
    inbox = ResultsInbox(store, Clock(), peer_lease_s=LEASE_S)
    report = done(task_id, n)
    assert send(inbox, store, "beta", report) == [("applied", "")]
    task = store.tasks.get(task_id)
    assert (task.state, task.attempts[-1].machine_id) == (TaskState.DONE, "peer:beta")
    (entry,) = store.ledger.entries()
    assert (entry.machine_id, entry.grams, entry.machine_hours) == ("peer:beta", 30.0, 1.5)
    before = counts(store)
    assert send(inbox, store, "beta", report) == [("duplicate", "")]
    assert send(inbox, store, "beta", report, report) == [("duplicate", "")] * 2
    assert counts(store)[1] == before[1] == 1  # one ledger entry
    (kept,) = PeerReports(store.db).list(peer="beta")
    assert (kept.report_id, kept.state, kept.outcome, kept.charged_mc) == (
        report.report_id, "done", "applied", 4200)  # fmt: skip
    assert peer_balances(store) == {"beta": 4200}  # settled once: alpha owes beta
    with store.db.read() as s:
        assert s.get(EventRow, report_event_id("beta", report.report_id)) is not None


def test_a_report_for_an_offer_taken_back_is_stale_but_recorded(store: Store) -> None:
    (task_id, *_) = setup_alpha(store)
    n = hand(store, task_id, "peer:beta")
    (expired,) = store.expire_leases(T0 + timedelta(seconds=LEASE_S))  # beta went silent
    assert expired.to_state is TaskState.QUEUED
    clock = Clock()
    clock.now = T0 + timedelta(seconds=LEASE_S + 60)
    inbox = ResultsInbox(store, clock, peer_lease_s=LEASE_S)
    beat = TaskReport("p9", task_id, n, ReportState.PROGRESS, fraction=0.9)
    (outcome,) = send(inbox, store, "beta", beat)
    assert outcome[0] == "stale"
    late = done(task_id, n)
    (outcome,) = send(inbox, store, "beta", late)
    assert outcome == ("stale", f"stale: event from machine peer:beta offer {n}; task is held by "
                                "None offer 1")  # fmt: skip
    task = store.tasks.get(task_id)
    assert (task.state, task.machine_id) == (TaskState.QUEUED, None)  # not counted
    assert store.ledger.entries() == []
    (kept,) = PeerReports(store.db).list(origin_task_id=task_id)
    assert (kept.outcome, kept.grams, kept.charged_mc) == ("stale", 30.0, 4200)
    assert peer_balances(store) == {"beta": 4200}  # the work was done: paid, not counted
    assert send(inbox, store, "beta", late)[0][0] == "duplicate"
    assert len(PeerReports(store.db).list()) == 1 and peer_balances(store) == {"beta": 4200}
    # handed to beta again (a new offer): the part is counted once, under the new offer
    m = hand(store, task_id, "peer:beta", clock.now)
    assert send(inbox, store, "beta", done(task_id, m)) == [("applied", "")]
    assert len(store.ledger.entries()) == 1
    assert peer_balances(store) == {"beta": 4200}  # once per (peer, task)


def test_a_report_about_a_task_not_sent_to_the_peer_is_refused(store: Store) -> None:
    gammas, local, unsent = setup_alpha(store)
    g = hand(store, gammas, "peer:gamma")
    k = hand(store, local, "k1/r1")
    before = ({t: store.tasks.get(t) for t in (gammas, local, unsent)}, counts(store))
    inbox = ResultsInbox(store, Clock(), peer_lease_s=LEASE_S)
    reports = [done(gammas, g), done(local, k), TaskReport("x", unsent, 1, ReportState.STARTED),
               done("f" * 32, 1), TaskReport("y", gammas, g, ReportState.RELEASED)]  # fmt: skip
    got = send(inbox, store, "beta", *reports)
    assert [o for o, _ in got] == ["refused"] * 5
    assert got[0][1] == f"task {gammas} was never sent to beta"
    assert got[3][1] == f"task {'f' * 32} was never sent to beta"
    after = ({t: store.tasks.get(t) for t in (gammas, local, unsent)}, counts(store))
    assert after == before
    assert PeerReports(store.db).list() == [] and peer_balances(store) == {}
    # sent to beta once, now held by gamma: beta's old offer is stale, gamma's task untouched
    store.expire_leases(T0 + timedelta(seconds=LEASE_S))
    moved = hand(store, gammas, "peer:beta", T0 + timedelta(seconds=LEASE_S))
    store.expire_leases(T0 + timedelta(seconds=2 * LEASE_S))
    hand(store, gammas, "peer:gamma", T0 + timedelta(seconds=2 * LEASE_S))
    held = store.tasks.get(gammas)
    (outcome,) = send(inbox, store, "beta", done(gammas, moved))
    assert outcome[0] == "stale"
    assert store.tasks.get(gammas) == held


def test_impossible_figures_are_refused(store: Store) -> None:
    (task_id, *_) = setup_alpha(store)
    n = hand(store, task_id, "peer:beta")
    inbox = ResultsInbox(store, Clock(), peer_lease_s=LEASE_S)
    before = (store.tasks.get(task_id), counts(store))
    heavy = done(task_id, n, "d1", grams=1e9)
    slow = done(task_id, n, "d2", machine_hours=1e6)
    got = send(inbox, store, "beta", heavy, slow)
    assert got[0] == ("refused", "grams must be 0..452.0 for this task, got 1000000000.0")
    assert got[1] == ("refused", "machine_hours must be 0..21.00 for this task, got 1000000.0")
    assert (store.tasks.get(task_id), counts(store)) == before
    with pytest.raises(Exception, match="must be finite"):
        inbox.receive(from_peer(store, "beta"), {"reports": [
            {**wire.reports_json([heavy])["reports"][0], "grams": float("inf")}]})  # fmt: skip


def test_failed_and_released_reports_end_the_attempt(store: Store) -> None:
    first, second, _ = setup_alpha(store)
    a, b = hand(store, first, "peer:beta"), hand(store, second, "peer:beta")
    store.apply_event(second, TaskStarted(machine_id="peer:beta", offer_no=b), T0)
    inbox = ResultsInbox(store, Clock(), peer_lease_s=LEASE_S)
    failed = TaskReport(f"{first}:{a}:failed", first, a, ReportState.FAILED, reason="bit broke")
    released = TaskReport(f"{second}:{b}:released", second, b, ReportState.RELEASED,
                          reason="cancelled at beta")  # fmt: skip
    assert send(inbox, store, "beta", failed, released) == [("applied", "")] * 2
    one, two = store.tasks.get(first), store.tasks.get(second)
    assert (one.state, one.attempts[-1].cause.value if one.attempts[-1].cause else None) == (
        TaskState.QUEUED, "failed")  # fmt: skip
    assert one.attempts[-1].detail == "at beta: bit broke"
    assert (two.state, two.attempts[-1].cause.value if two.attempts[-1].cause else None) == (
        TaskState.QUEUED, "released")  # fmt: skip
    assert sorted((r.state, r.outcome) for r in PeerReports(store.db).list()) == [
        ("failed", "applied"), ("released", "applied")]  # fmt: skip


def test_reports_arrive_through_the_signed_endpoint(tmp_path: Path) -> None:
    with hub(tmp_path, "alpha") as alpha, hub(tmp_path, "beta") as beta:
        alpha.add_peer(beta)
        beta.add_peer(alpha)
        assert alpha.operator().post("/api/v1/peers/beta/hello").status_code == 200
        (task_id, *_) = setup_beta_work(alpha.store)
        n = hand(alpha.store, task_id, "peer:beta", datetime.now(UTC))
        key_file = tmp_path / "beta" / "federation" / "hub_ed25519.pem"
        me = PeerService(Peers(beta.store.db), FederationConfig("beta", key_file, SKEW_S),
                         lambda: datetime.now(UTC)).require_identity()  # fmt: skip
        client = PeerClient(me.name, me.key, me.max_skew_s, lambda: datetime.now(UTC))
        alpha_seen_by_beta = Peers(beta.store.db).get("alpha")
        assert alpha_seen_by_beta is not None
        report = done(task_id, n)
        answer = client.post(alpha_seen_by_beta, wire.REPORTS_PATH, wire.reports_json([report]))
        assert [r.outcome for r in wire.results_from_json(answer)] == [ReportOutcome.APPLIED]
        assert alpha.store.tasks.get(task_id).state is TaskState.DONE
        forged = PeerClient("beta", HubKey.generate(), SKEW_S, lambda: datetime.now(UTC))
        with pytest.raises(Exception, match="refused \\(401\\)"):
            forged.post(alpha_seen_by_beta, wire.REPORTS_PATH, wire.reports_json([report]))


def setup_beta_work(store: Store) -> list[str]:
    """Alpha's job for the endpoint test (the peers come from the operator routes)."""
    store.catalog.add_design(Design(design_id=DESIGN, name="plate", bbox_mm=(40, 40, 10),
                                    license="CC0-1.0"), T0)  # fmt: skip
    spec = JobSpec(job_id="e" * 32, requester="req", design_id=DESIGN, kind=MachineKind.CNC,
                   material="MDF", quantity=1, part_size_mm=(40.0, 40.0, 10.0),
                   hours_per_part=2.0)  # fmt: skip
    store.jobs.submit(spec, T0)
    return [t.task_id for t in store.tasks.find(job_id=spec.job_id)]
