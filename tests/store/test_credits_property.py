"""The ledger's promise (issue 11), on SQLite and PostgreSQL: any interleaving of submits
(holds), completions (some delivered twice), acceptances (some clicked twice), rejections,
disputes, voids, failures, cancellations, hub ticks (auto-accept, refunds) and restarts (a new
``Store`` on the same database) leaves every balance equal to the sum of its entries, the sum
over all accounts zero, no task paid twice and no job paying more than its cap (hypothesis)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fabnet.core import credits as cr
from fabnet.core.events import (
    TaskAccepted,
    TaskCompleted,
    TaskFailed,
    TaskOffered,
    TaskStarted,
)
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, TaskState
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict
from fabnet.store import Store

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
TERMS = cr.Terms(fee_bp=1000, auto_accept_after_s=3600.0)
PER_KG = {"PLA": 25_000}
MACHINES = ("k0-m0", "k1-m0")
USERS = ("pat", "ria")
TASKS = 6  # two jobs of three to start with
Fleet = Callable[..., list[Machine]]

task_no = st.integers(0, 3 * TASKS - 1)  # taken modulo the tasks there are
complete = st.tuples(
    st.just("complete"),
    task_no,
    st.sampled_from(MACHINES),
    st.booleans(),  # the completion delivered twice
    st.sampled_from(("", "accept", "reject")),  # what the requester does at once
)
others = st.one_of(
    st.tuples(st.just("accept"), task_no, st.integers(1, 2)),
    st.tuples(st.just("reject"), task_no, st.sampled_from(list(cr.RejectReason))),
    st.tuples(st.just("dispute"), task_no),
    st.tuples(st.just("void"), task_no),
    st.tuples(st.just("fail"), task_no, st.sampled_from(MACHINES)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("submit"), st.sampled_from(USERS), st.integers(1, 40_000)),
    st.tuples(st.just("tick"), st.integers(0, 7200)),
    st.tuples(st.just("restart")),
)
# half the steps make a part: most other steps need a done task to mean something
ops = st.lists(st.one_of(complete, others), min_size=8, max_size=40)


# the state a step's task is picked in (when some task is in it)
WANTS = {
    "complete": TaskState.QUEUED,
    "fail": TaskState.QUEUED,
    "accept": TaskState.DONE,
    "reject": TaskState.DONE,
    "dispute": TaskState.DONE,
    "void": TaskState.DONE,
}


class World:
    """The store under test and what the steps refer to."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: list[str] = []
        self.jobs: list[str] = []
        self.at = NOW

    def submit(self, requester: str, cap_mc: int | None) -> None:
        job_id = uuid.uuid4().hex
        spec = JobSpec(
            job_id=job_id,
            requester=requester,
            design_id="ab" * 32,
            kind=MachineKind.FDM,
            material="PLA",
            quantity=3,
            part_size_mm=(20.0, 20.0, 20.0),
            hours_per_part=0.5,
        )
        self.store.jobs.submit(spec, self.at)
        self.jobs.append(job_id)
        self.tasks += [t.task_id for t in self.store.tasks.find(job_id=job_id)]
        if cap_mc is not None:
            try:
                self.store.credits.hold(job_id, requester, cap_mc, 2000, self.at)
            except Conflict:
                self.store.jobs.cancel(job_id, self.at, "not enough credits")

    def complete(self, task_id: str, machine: str, twice: bool) -> None:
        offer = self.store.apply_event(task_id, TaskOffered(machine_id=machine), self.at)
        if not isinstance(offer, Transition):
            return
        n = offer.task.offer_no
        for move in (TaskAccepted(machine_id=machine, offer_no=n),
                     TaskStarted(machine_id=machine, offer_no=n)):  # fmt: skip
            self.store.apply_event(task_id, move, self.at)
        done = TaskCompleted(machine_id=machine, offer_no=n, grams=30.0, machine_hours=0.75)
        for _ in range(2 if twice else 1):
            self.store.apply_event(task_id, done, self.at)

    def fail(self, task_id: str, machine: str) -> None:
        offer = self.store.apply_event(task_id, TaskOffered(machine_id=machine), self.at)
        if isinstance(offer, Transition):
            n = offer.task.offer_no
            self.store.apply_event(task_id, TaskAccepted(machine_id=machine, offer_no=n), self.at)
            self.store.apply_event(task_id, TaskFailed(machine_id=machine, offer_no=n), self.at)

    def pick(self, i: int, state: TaskState | None) -> str:
        """Task ``i`` (modulo) of those in ``state`` when there are any, else of all: most
        steps then meet a task they apply to, some a task in the wrong state."""
        tasks = [t for j in self.jobs for t in self.store.tasks.find(job_id=j)]
        fitting = [t.task_id for t in tasks if t.state is state] or [t.task_id for t in tasks]
        return fitting[i % len(fitting)]

    def tick(self) -> None:
        """What the hub's scheduler does: accept what waited too long, settle jobs."""
        due = self.at - timedelta(seconds=TERMS.auto_accept_after_s)
        for task_id in self.store.reviews.due(due):
            self.store.reviews.accept(task_id, "hub", self.at, TERMS, PER_KG)
        for job_id in self.store.reviews.unsettled_jobs():
            self.store.reviews.settle_job(job_id, self.at)

    def step(self, op: tuple[object, ...]) -> None:
        kind = op[0]
        reviews = self.store.reviews
        plain = kind in ("cancel", "submit", "tick", "restart")
        task = "" if plain else self.pick(int(op[1]), WANTS.get(str(kind)))  # type: ignore[call-overload]
        try:
            if kind == "complete":
                self.complete(task, str(op[2]), bool(op[3]))
                if op[4] == "accept":
                    reviews.accept(task, "requester", self.at, TERMS, PER_KG)
                elif op[4] == "reject":
                    reviews.reject(task, cr.RejectReason.DAMAGED, "", "requester", self.at)
            elif kind == "accept":
                for _ in range(int(op[2])):  # type: ignore[call-overload]
                    reviews.accept(task, "requester", self.at, TERMS, PER_KG)
            elif kind == "reject":
                reviews.reject(task, op[2], "", "requester", self.at)  # type: ignore[arg-type]
            elif kind == "dispute":
                reviews.dispute(task, "requester", "", self.at)
            elif kind == "void":
                reviews.void(task, "operator", "", self.at)
            elif kind == "fail":
                self.fail(task, str(op[2]))
            elif kind == "cancel":
                job_id = self.jobs[int(op[1]) % len(self.jobs)]  # type: ignore[call-overload]
                self.store.jobs.cancel(job_id, self.at, "test")
            elif kind == "submit":
                self.submit(str(op[1]), int(op[2]))  # type: ignore[call-overload]
            elif kind == "tick":
                self.at += timedelta(seconds=int(op[1]))  # type: ignore[call-overload]
                self.tick()
            else:  # a hub restart: a new Store object on the same database
                url = self.store.db.url
                self.store.close()
                self.store = Store(url)
        except Conflict:
            pass  # refused (wrong state, rejected twice, not enough credits): fine


def check_books(store: Store, caps: dict[str, int], jobs: list[str]) -> None:
    """The promises over the whole database; each balance against its statement for the
    accounts this example touched (earlier examples' escrows were checked in theirs)."""
    balances = store.credits.balances()
    assert sum(balances.values()) == 0
    assert store.credits.unbalanced() == []
    for account, balance in balances.items():
        if account.startswith("escrow:"):
            assert balance >= 0, account
    mine = {cr.escrow_account(j) for j in jobs}
    for account in (a for a in balances if a in mine or not a.startswith("escrow:")):
        assert balances[account] == sum(x.amount_mc for x in store.credits.statement(account))
    payments = store.credits.postings(cr.PostingKind.PAYMENT)
    paid_tasks = Counter(p.task_id for p in payments)
    assert all(n == 1 for n in paid_tasks.values()), paid_tasks
    for task_id in paid_tasks:
        assert store.reviews.review_of(str(task_id)) is cr.Review.ACCEPTED
        assert store.tasks.get(str(task_id)).state is TaskState.DONE
    for job_id, cap in caps.items():
        spent = -sum(p.amount_for(cr.escrow_account(job_id)) for p in payments)
        assert spent <= cap


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops, cap_mc=st.integers(1000, 15_000))
def test_any_interleaving_keeps_the_books(
    store: Store, fleet: Fleet, steps: list[tuple[object, ...]], cap_mc: int
) -> None:
    if not store.catalog.list_makers():
        fleet(makers=2, per_maker=1)
        store.accounts.add_user("pat", "password1", ["requester", "maker"], NOW, maker_ids=["k0"])
        store.accounts.add_user("ria", "password1", ["requester"], NOW)
        store.prices.set("k1-m0", 3000, {"PLA": 40_000}, "k1", NOW)
    world = World(store)
    for user in USERS:
        store.credits.grant(uuid.uuid4().hex, user, 20_000, NOW)
    world.submit("pat", cap_mc)
    world.submit("ria", None)  # a job without a budget: paid from the requester's account
    for step in steps:
        world.step(step)
    world.at += timedelta(seconds=TERMS.auto_accept_after_s)
    world.tick()  # the hub accepts what nobody answered, and settles what it can
    caps = {
        str(p.job_id): -p.amount_for(p.legs[0].account)
        for p in world.store.credits.postings(cr.PostingKind.HOLD)
    }
    # what this example did (the database is shared by the examples of one test)
    mine = [p for p in world.store.credits.postings() if p.job_id in world.jobs]
    for kind in (cr.PostingKind.PAYMENT, cr.PostingKind.REFUND):
        event(f"{kind.value}s: {min(sum(p.kind is kind for p in mine), 3)}")
    rejected = sum(r.job_id in world.jobs for r in world.store.reviews.rejections())
    event(f"rejections: {min(rejected, 3)}")
    check_books(world.store, caps, world.jobs)
    if world.store is not store:
        world.store.close()
