"""Credits between two hubs (issue 12), each its own store: hub A sent a task to peer B, B made
it for requester ``peer:A`` and charged (``charge_peer_task``), A recorded the charge on B's
DONE report (``settle_peer_work``) and A's requester accepts or rejects the part.

Table tests run every sequence of those calls (twice, late, out of order, with the hubs'
auto-accept ticks and a rejection in between) and then let the reporter finish (charge and
report once more, as it would after a restart); afterwards every posting balances, the two
hubs' peer accounts mirror, and every party paid exactly once. Also with threads racing, and
on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pg_support import fresh_pg_database

from fabnet.core import credits as cr
from fabnet.core import events as ev
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, MachineState, TaskState
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict, InvalidInput
from fabnet.federation import wire
from fabnet.federation.settlement import charge_peer_task, peer_balances, settle_peer_work
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.economy import Economy
from fabnet.hub.service import HubService, JobRequest
from fabnet.library.design import library_dir
from fabnet.store import Store

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=10)  # past every auto-accept delay
CUBE = "cube-xyz-20mm"
TERMS_A = cr.Terms(fee_bp=1000)
TERMS_B = cr.Terms(fee_bp=500)
GRAMS, HOURS = 12.0, 0.75


def _finish(store: Store, task_id: str, machine: str) -> None:
    """Make ``task_id`` on ``machine`` with the events its agent (or peer) would send."""
    offer = store.apply_event(task_id, ev.TaskOffered(machine_id=machine, offer_s=60), NOW)
    assert isinstance(offer, Transition), offer
    n = offer.task.offer_no
    for event in (
        ev.TaskAccepted(machine_id=machine, offer_no=n, lease_s=900),
        ev.TaskAssigned(machine_id=machine, offer_no=n, lease_s=900),
        ev.TaskStarted(machine_id=machine, offer_no=n),
        ev.TaskCompleted(machine_id=machine, offer_no=n, grams=GRAMS, machine_hours=HOURS),
    ):
        assert isinstance(store.apply_event(task_id, event, NOW), Transition), event


def _hub(url: str, machine: Machine, terms: cr.Terms) -> tuple[Store, Economy]:
    store = Store(url)
    designs = DesignCatalog(store, library_dir())
    designs.register_library(NOW)
    service = HubService(store, designs, lambda job, why: None, clock=lambda: NOW)
    store.catalog.add_maker(machine.maker_id, NOW, maker_id=machine.maker_id)
    store.catalog.upsert_machine(machine)
    return store, Economy(service, terms, clock=lambda: NOW)


@dataclass
class Pair:
    """Hub A (requester rita, its task held by pseudo-machine ``peer:B``) and hub B (maker
    bob, the same part as a job of requester ``peer:A``), both tasks done."""

    a: Store
    b: Store
    economy_a: Economy
    economy_b: Economy
    a_task: str
    b_task: str
    budget_mc: int | None = None
    charged: list[int] = field(default_factory=list)
    expected_paid: int = 0  # what A's requester should have paid, from the steps so far

    def close(self) -> None:
        self.a.close()
        self.b.close()


def make_pair(url_a: str, url_b: str, *, budget_mc: int | None = None) -> Pair:
    peer_b = wire.peer_machine_id("B")
    a, economy_a = _hub(url_a, Machine(peer_b, peer_b, MachineKind.FDM, (300.0, 300.0, 300.0),
                                       0.4, frozenset(), state=MachineState.OFFLINE), TERMS_A)  # fmt: skip
    b, economy_b = _hub(url_b, Machine("bob/m1", "bob", MachineKind.FDM, (250.0, 210.0, 210.0),
                                       0.4, frozenset({"PLA"})), TERMS_B)  # fmt: skip
    a.accounts.add_user("rita", "password1", ["requester"], NOW)
    a.credits.grant("seed", "rita", 100_000, NOW)
    request = JobRequest(CUBE, 1, "PLA", requester="rita")
    if budget_mc is None:
        job_a = economy_a.service.submit(request).spec.job_id
    else:
        job_a = economy_a.submit(request, budget_mc)[0].spec.job_id
    peer_a = wire.peer_requester("A")
    job_b = economy_b.service.submit(JobRequest(CUBE, 1, "PLA", requester=peer_a)).spec.job_id
    (a_task,) = (t.task_id for t in a.tasks.find(job_id=job_a))
    (b_task,) = (t.task_id for t in b.tasks.find(job_id=job_b))
    _finish(a, a_task, peer_b)
    _finish(b, b_task, "bob/m1")
    return Pair(a, b, economy_a, economy_b, a_task, b_task, budget_mc)


# -- the steps ----------------------------------------------------------------------------


def charge(p: Pair, free: bool = False) -> None:
    p.charged.append(charge_peer_task(p.b, p.b_task, "A", free, TERMS_B, NOW))


def report(p: Pair) -> None:
    """B's DONE report reaches A with what B charged (B charges before it reports)."""
    if not p.charged:
        charge(p)
    settle_peer_work(p.a, "B", p.a_task, p.charged[-1], NOW)


def _accepting(p: Pair, act: Callable[[], object]) -> None:
    """Run ``act``; if it accepted the part, expect the charge recorded before it (+ fee,
    within the budget) to be paid."""
    before = p.a.reviews.review_of(p.a_task)
    owed = p.a.credits.posted_amount(cr.peer_work_key("B", p.a_task), cr.peer_account("B"))
    act()
    if before is None and p.a.reviews.review_of(p.a_task) is cr.Review.ACCEPTED:
        total = cr.with_fee(owed or 0, TERMS_A.fee_bp)
        p.expected_paid = total if p.budget_mc is None else min(total, p.budget_mc)


def accept(p: Pair) -> None:
    def act() -> None:
        try:
            p.economy_a.accept(p.a_task, "rita")
        except Conflict:  # rejected before: back in the queue
            assert p.a.tasks.get(p.a_task).state is not TaskState.DONE

    _accepting(p, act)


def reject(p: Pair) -> None:
    try:
        p.economy_a.reject(p.a_task, "damaged", "", "rita")
    except Conflict:  # accepted before
        assert p.a.reviews.review_of(p.a_task) is cr.Review.ACCEPTED


def tick_a(p: Pair) -> None:
    _accepting(p, lambda: p.economy_a.tick(LATER))


def tick_b(p: Pair) -> None:
    """B's auto-accept never accepts a peer's job: its reporter does, charged or free."""
    reviewed = p.b.reviews.review_of(p.b_task)
    p.economy_b.tick(LATER)
    assert p.b.reviews.review_of(p.b_task) is reviewed


STEPS: dict[str, Callable[[Pair], None]] = {
    "charge": charge,
    "free": lambda p: charge(p, free=True),
    "report": report,
    "accept": accept,
    "reject": reject,
    "tick_a": tick_a,
    "tick_b": tick_b,
}
SEQUENCES = [
    "charge report accept",
    "charge charge report report accept accept",
    "charge report tick_a",
    "charge report tick_a accept tick_a",
    "tick_b charge tick_b report tick_a",
    "accept charge report",  # accepted before the charge was recorded: A's requester pays 0
    "charge accept report report",
    "charge report reject accept tick_a report",  # rejected: the peer is still owed
    "reject report accept",
    "free report accept charge report",  # free stays free when charged again
    "free free report tick_a",
    "report charge report accept",
    "charge report accept reject accept",
]


def _paid_at_a(p: Pair) -> int:
    """What A's requester (or the job's escrow) paid for the part: into clearing and fees."""
    key = cr.pay_key(p.a_task)
    into = (p.a.credits.posted_amount(key, a) for a in (cr.FEDERATION_ACCOUNT, cr.FEE_ACCOUNT))
    return sum(x or 0 for x in into)


def check_books(p: Pair) -> None:
    """Balanced, mirrored, and each party paid once."""
    for store in (p.a, p.b):
        assert store.credits.unbalanced() == []
        assert sum(store.credits.balances().values()) == 0
    charged = p.charged[-1]
    assert len(set(p.charged)) == 1, f"charging again changed the amount: {p.charged}"
    owed_to_b = peer_balances(p.a).get("B", 0)
    assert owed_to_b == charged == -peer_balances(p.b).get("A", 0)
    assert set(peer_balances(p.a)) <= {"B"} and set(peer_balances(p.b)) <= {"A"}
    # B's maker and fee were paid once, from peer:A
    bob = p.b.credits.balance(cr.maker_account("bob"))
    assert bob + p.b.credits.balance(cr.FEE_ACCOUNT) == charged
    assert bob == 0 or cr.with_fee(bob, TERMS_B.fee_bp) == charged
    # A's requester paid the charge recorded when the part was accepted (+ A's fee), once
    paid = _paid_at_a(p)
    assert paid == p.expected_paid
    fees, clearing = (p.a.credits.balance(x) for x in (cr.FEE_ACCOUNT, cr.FEDERATION_ACCOUNT))
    assert fees + clearing + charged == paid
    assert len(p.a.credits.postings(cr.PostingKind.PEER_WORK)) == (1 if charged else 0)
    assert len(p.b.credits.postings(cr.PostingKind.PAYMENT)) == (1 if charged else 0)


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[Callable[..., Pair]]:
    made: list[Pair] = []

    def make(**kwargs: int) -> Pair:
        n = len(made)
        pair = make_pair(f"sqlite:///{tmp_path / f'a{n}.db'}", f"sqlite:///{tmp_path / f'b{n}.db'}",
                         **kwargs)  # fmt: skip
        made.append(pair)
        return pair

    yield make
    for pair in made:
        pair.close()


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_every_sequence_balances_mirrors_and_pays_once(
    sqlite_pair: Callable[..., Pair], sequence: str
) -> None:
    p = sqlite_pair()
    for step in sequence.split():
        STEPS[step](p)
    free = sequence.startswith("free")
    charge(p, free=free)  # the reporter finishes: charges and reports once more
    report(p)
    check_books(p)
    if sequence.startswith("charge report accept"):
        assert p.expected_paid == cr.with_fee(p.charged[-1], TERMS_A.fee_bp) > 0
    if sequence.startswith(("accept", "reject")):
        assert p.expected_paid == 0


def test_the_requester_pays_the_peer_charge_plus_fee_within_the_cap(
    sqlite_pair: Callable[..., Pair],
) -> None:
    p = sqlite_pair()
    charge(p)
    report(p)
    owed = p.charged[-1]
    assert owed > 0
    assert p.a.reviews.review_of(p.a_task) is None
    accept(p)
    assert _paid_at_a(p) == cr.with_fee(owed, TERMS_A.fee_bp) == p.expected_paid
    assert p.a.credits.balance(cr.FEDERATION_ACCOUNT) == 0  # owed to B, paid by rita
    check_books(p)
    # a budget smaller than the charge + fee caps what the requester pays
    capped = sqlite_pair(budget_mc=owed // 2)
    charge(capped)
    report(capped)
    accept(capped)
    assert _paid_at_a(capped) == owed // 2
    assert capped.a.credits.balance(cr.FEDERATION_ACCOUNT) < 0  # the operator's loss
    check_books(capped)


def test_a_part_remade_after_a_rejection_is_owed_too_and_the_requester_pays_the_last(
    sqlite_pair: Callable[..., Pair],
) -> None:
    """B made the part, A's requester rejected it, B made another: B is owed both (each part
    once, however often reported); the requester pays for the part she accepted; A's clearing
    account bears the rejected one."""
    p = sqlite_pair()
    assert settle_peer_work(p.a, "B", p.a_task, 3_000, NOW, "b-part-1")
    p.economy_a.reject(p.a_task, "damaged", "", "rita")
    _finish(p.a, p.a_task, wire.peer_machine_id("B"))  # made again at B
    later = NOW + timedelta(minutes=5)
    assert settle_peer_work(p.a, "B", p.a_task, 2_000, later, "b-part-2")
    assert not settle_peer_work(p.a, "B", p.a_task, 2_000, later, "b-part-2")
    assert not settle_peer_work(p.a, "B", p.a_task, 3_000, later, "b-part-1")  # late, again
    p.economy_a.accept(p.a_task, "rita")
    assert _paid_at_a(p) == cr.with_fee(2_000, TERMS_A.fee_bp)
    assert peer_balances(p.a) == {"B": 5_000}
    assert p.a.credits.balance(cr.FEDERATION_ACCOUNT) == -3_000
    assert p.a.credits.unbalanced() == [] and sum(p.a.credits.balances().values()) == 0


def test_bad_calls_are_refused_by_name(sqlite_pair: Callable[..., Pair]) -> None:
    p = sqlite_pair()
    with pytest.raises(Conflict, match="not by peer hub 'C'"):
        charge_peer_task(p.b, p.b_task, "C", False, TERMS_B, NOW)
    with pytest.raises(InvalidInput, match="charged_mc must be an integer >= 0, got -1"):
        settle_peer_work(p.a, "B", p.a_task, -1, NOW)
    with pytest.raises(InvalidInput, match="peer_name"):
        settle_peer_work(p.a, "", p.a_task, 5, NOW)
    assert settle_peer_work(p.a, "B", p.a_task, 0, NOW) is False  # nothing owed
    assert p.a.credits.balances() == {"hub:issued": -100_000, "user:rita": 100_000}
    # a peer's job may run its account below zero: no debt limit between operators
    assert cr.debt_limit_of(cr.peer_account("A"), cr.Terms(debt_limit_mc=5)) is None
    assert cr.requester_account(wire.peer_requester("A")) == "peer:A"
    assert cr.requester_account("rita") == "user:rita"


def _race(p: Pair, settle_with: int | None = None) -> None:
    """Four threads charge, report and accept at once, twice over."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run(step: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(2):
                step()
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    def report_now() -> None:
        owed = settle_with if settle_with is not None else p.charged[-1]
        settle_peer_work(p.a, "B", p.a_task, owed, NOW)

    steps: list[Callable[[], object]] = [
        lambda: charge(p),
        lambda: charge(p),
        report_now,
        lambda: accept(p),
    ]
    threads = [threading.Thread(target=run, args=(s,)) for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def _race_and_check(p: Pair) -> None:
    owed = charge_peer_task(p.b, p.b_task, "A", False, TERMS_B, NOW)  # what B will charge
    _race(p, settle_with=owed)
    # accepted before or after the report landed: the whole charge + fee, or nothing
    assert _paid_at_a(p) in (0, cr.with_fee(owed, TERMS_A.fee_bp))
    p.expected_paid = _paid_at_a(p)
    charge(p)
    report(p)
    check_books(p)


def test_racing_calls_move_credits_once(sqlite_pair: Callable[..., Pair]) -> None:
    _race_and_check(sqlite_pair())


@pytest.fixture
def pg_pair(pg_url: str) -> Iterator[Pair]:
    second = fresh_pg_database()
    pair = make_pair(pg_url, next(second))
    try:
        yield pair
    finally:
        pair.close()
        second.close()  # drops B's database


def test_on_postgresql_sequences_and_races_hold(pg_pair: Pair) -> None:
    _race_and_check(pg_pair)
    for step in ("charge", "report", "reject", "tick_a", "report", "tick_b"):
        STEPS[step](pg_pair)
    check_books(pg_pair)
