"""The credit ledger and acceptance on SQLite and PostgreSQL: holds against the balance,
payment at acceptance (once), rejection (once, against the machine), disputes, refunds."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from fabnet.core import credits as cr
from fabnet.core.events import TaskAccepted, TaskCompleted, TaskOffered, TaskStarted
from fabnet.core.jobs import JobSpec
from fabnet.core.machines import Machine
from fabnet.core.states import MachineKind, TaskState
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict
from fabnet.store import Store
from fabnet.store.budgets import task_budgets

Fleet = Callable[..., list[Machine]]
NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)  # as the fixtures
TERMS = cr.Terms(fee_bp=1000)
PER_KG = {"PLA": 25_000}
PAT = cr.user_account("pat")


def submit(store: Store, quantity: int = 1, requester: str = "pat") -> tuple[str, list[str]]:
    job_id = uuid.uuid4().hex
    spec = JobSpec(
        job_id=job_id,
        requester=requester,
        design_id="ab" * 32,
        kind=MachineKind.FDM,
        material="PLA",
        quantity=quantity,
        part_size_mm=(20.0, 20.0, 20.0),
        hours_per_part=0.5,
    )
    store.jobs.submit(spec, NOW)
    return job_id, [t.task_id for t in store.tasks.find(job_id=job_id)]


def make(store: Store, task_id: str, machine: str, grams: float = 40.0, hours: float = 0.5) -> None:
    offer = store.apply_event(task_id, TaskOffered(machine_id=machine), NOW)
    assert isinstance(offer, Transition), offer
    n = offer.task.offer_no
    for event in (
        TaskAccepted(machine_id=machine, offer_no=n),
        TaskStarted(machine_id=machine, offer_no=n),
        TaskCompleted(machine_id=machine, offer_no=n, grams=grams, machine_hours=hours),
    ):
        assert isinstance(store.apply_event(task_id, event, NOW), Transition)


@pytest.fixture
def pat(store: Store, fleet: Fleet) -> Store:
    """Makers k0, k1 (one machine each); pat is a prosumer owning k0, with 10 credits."""
    fleet(makers=2, per_maker=1)
    store.accounts.add_user("pat", "password1", ["requester", "maker"], NOW, maker_ids=["k0"])
    assert store.credits.grant("seed", "pat", 10_000, NOW)
    return store


def assert_books_balance(store: Store) -> None:
    balances = store.credits.balances()
    assert sum(balances.values()) == 0
    assert store.credits.unbalanced() == []
    for account, balance in balances.items():
        assert balance == sum(line.amount_mc for line in store.credits.statement(account))


def test_a_hold_needs_the_credits_or_the_allowed_debt(pat: Store) -> None:
    store = pat
    job_a, _ = submit(store)
    store.credits.hold(job_a, "pat", 8000, 0, NOW)
    store.credits.hold(job_a, "pat", 8000, 0, NOW)  # a retry holds nothing more
    assert store.credits.balance(PAT) == 2000
    job_b, _ = submit(store)
    with pytest.raises(
        Conflict, match="not enough credits: pat has 2000 mc, the job's cap is 5000"
    ):
        store.credits.hold(job_b, "pat", 5000, 0, NOW)
    store.credits.hold(job_b, "pat", 5000, 3000, NOW)
    assert store.credits.balance(PAT) == -3000
    assert store.credits.balance(cr.escrow_account(job_b)) == 5000
    assert not store.credits.grant("seed", "pat", 10_000, NOW)  # a grant is posted once
    assert_books_balance(store)


def test_acceptance_pays_the_maker_once_at_the_machines_price(pat: Store) -> None:
    store = pat
    store.prices.set("k1-m0", 2000, {"PLA": 20_000}, "k1", NOW)
    job_id, (task,) = submit(store)
    store.credits.hold(job_id, "pat", 9000, 0, NOW)
    make(store, task, "k1-m0", grams=40.0, hours=0.5)
    assert store.credits.postings(cr.PostingKind.PAYMENT) == []  # not at completion
    first = store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    second = store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    # 0.5 h * 2000 + 40 g * 20 mc/g = 1800; fee 180
    assert first.payment is not None and not first.already
    assert first.payment.amount_for(cr.maker_account("k1")) == 1800
    assert first.payment.amount_for(cr.FEE_ACCOUNT) == 180
    assert second.already and second.payment is None
    assert len(store.credits.postings(cr.PostingKind.PAYMENT)) == 1
    refund = store.reviews.settle_job(job_id, NOW)
    assert refund is not None and refund.amount_for(PAT) == 9000 - 1980
    assert store.reviews.settle_job(job_id, NOW) is None
    assert store.credits.balance(PAT) == 10_000 - 1980
    assert store.credits.balance(cr.escrow_account(job_id)) == 0
    assert_books_balance(store)


def test_a_prosumers_earnings_pay_for_their_requests(pat: Store) -> None:
    store = pat
    store.accounts.add_user("ria", "password1", ["requester"], NOW)
    store.credits.grant("ria", "ria", 5000, NOW)
    job_id, (task,) = submit(store, requester="ria")
    store.credits.hold(job_id, "ria", 5000, 0, NOW)
    make(store, task, "k0-m0", grams=0.0, hours=1.0)  # pat's machine: 1 h at the default price
    store.reviews.accept(task, "ria", NOW, TERMS, PER_KG)
    assert store.credits.balance(PAT) == 10_000 + cr.DEFAULT_PER_HOUR_MC
    own_job, _ = submit(store)
    store.credits.hold(own_job, "pat", 11_000, 0, NOW)  # more than was granted
    assert_books_balance(store)


def test_a_job_never_costs_more_than_its_cap(pat: Store) -> None:
    store = pat
    store.prices.set("k1-m0", 100_000, {}, "k1", NOW)  # dear: 50 credits for half an hour
    job_id, tasks = submit(store, quantity=2)
    store.credits.hold(job_id, "pat", 3000, 0, NOW)
    for task in tasks:
        make(store, task, "k1-m0")
        store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    paid = store.credits.postings(cr.PostingKind.PAYMENT)
    assert len(paid) == 1 and paid[0].amount_for(cr.escrow_account(job_id)) == -3000
    assert store.credits.balance(cr.escrow_account(job_id)) == 0
    assert store.reviews.review_of(tasks[1]) is cr.Review.ACCEPTED
    assert_books_balance(store)


def test_rejected_once_then_accepted_or_disputed(pat: Store) -> None:
    store = pat
    job_id, (task,) = submit(store)
    store.credits.hold(job_id, "pat", 5000, 0, NOW)
    with pytest.raises(Conflict, match="is queued: only a done task is rejected"):
        store.reviews.reject(task, cr.RejectReason.DAMAGED, "", "pat", NOW)
    make(store, task, "k1-m0")
    moved = store.reviews.reject(task, cr.RejectReason.WRONG_MATERIAL, "PETG", "pat", NOW)
    assert moved.to_state is TaskState.QUEUED
    assert store.tasks.get(task).state is TaskState.QUEUED
    (rejection,) = store.reviews.rejections("k1-m0")
    assert (rejection.task_id, rejection.maker_id) == (task, "k1")
    assert rejection.reason is cr.RejectReason.WRONG_MATERIAL
    assert store.ledger.totals() == {}  # the rejected part's record left the ledger
    make(store, task, "k0-m0")  # made again, its completion recorded anew
    assert store.ledger.totals()["all"].tasks == 1
    with pytest.raises(Conflict, match="rejected once already: accept it or open a dispute"):
        store.reviews.reject(task, cr.RejectReason.DAMAGED, "", "pat", NOW)
    store.reviews.dispute(task, "pat", "still damaged", NOW)
    assert store.reviews.due(NOW + timedelta(days=30)) == []  # never auto-accepted
    with pytest.raises(Conflict, match="is disputed: an operator decides"):
        store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    store.reviews.void(task, "operator", "refund", NOW)
    with pytest.raises(Conflict, match="voided"):
        store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    refund = store.reviews.settle_job(job_id, NOW)
    assert refund is not None and refund.amount_for(PAT) == 5000
    assert store.credits.postings(cr.PostingKind.PAYMENT) == []
    assert_books_balance(store)


def test_a_disputed_task_paid_by_the_operator(pat: Store) -> None:
    store = pat
    job_id, (task,) = submit(store)
    make(store, task, "k1-m0")
    store.reviews.reject(task, cr.RejectReason.FAILED_PRINT, "", "pat", NOW)
    make(store, task, "k1-m0")
    store.reviews.dispute(task, "pat", "", NOW)
    settled = store.reviews.accept(task, "operator", NOW, TERMS, PER_KG, resolving=True)
    assert settled.payment is not None  # no budget: paid from the requester's account
    assert settled.payment.amount_for(PAT) < 0
    assert store.reviews.settle_job(job_id, NOW) is None  # nothing was held
    assert_books_balance(store)


def test_due_lists_done_tasks_nobody_decided(pat: Store) -> None:
    store = pat
    _, tasks = submit(store, quantity=3)
    for task in tasks:
        make(store, task, "k1-m0")
    store.reviews.accept(tasks[0], "pat", NOW, TERMS, PER_KG)
    assert store.reviews.due(NOW - timedelta(seconds=1)) == []
    assert sorted(store.reviews.due(NOW)) == sorted(tasks[1:])


def test_unsettled_jobs_lists_only_jobs_ready_for_their_refund(pat: Store) -> None:
    """The tick's work list: a job still at work, one disputed, one spent to its cap and one
    without a budget are not listed (the tick writes nothing for them); a job whose tasks
    are all decided with escrow left is, until it is refunded."""
    store = pat
    store.credits.grant("more", "pat", 90_000, NOW)
    working, (queued, made) = submit(store, quantity=2)
    disputed, (argued,) = submit(store)
    spent, (dear,) = submit(store)
    ready, (fine, gone) = submit(store, quantity=2)
    for job_id, cap in ((working, 9000), (disputed, 9000), (spent, 100), (ready, 9000)):
        store.credits.hold(job_id, "pat", cap, 0, NOW)
    unbudgeted, (free,) = submit(store)
    for task in (made, argued, dear, fine, free):
        make(store, task, "k1-m0")
    for task in (made, dear, fine, free):
        store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
    store.reviews.reject(argued, cr.RejectReason.DAMAGED, "", "pat", NOW)
    make(store, argued, "k1-m0")
    store.reviews.dispute(argued, "pat", "", NOW)
    assert store.reviews.unsettled_jobs() == []  # `gone` is queued still, `queued` too
    store.jobs.cancel(ready, NOW, "enough")  # cancels `gone`; `fine` stays done
    assert store.tasks.get(queued).state is TaskState.QUEUED
    assert store.reviews.unsettled_jobs() == [ready]
    refund = store.reviews.settle_job(ready, NOW)
    assert refund is not None and store.reviews.unsettled_jobs() == []
    store.reviews.void(argued, "operator", "", NOW)
    assert store.reviews.unsettled_jobs() == [disputed]
    assert store.reviews.settle_job(disputed, NOW) is not None
    assert store.credits.balance(cr.escrow_account(spent)) == 0 and unbudgeted
    assert_books_balance(store)


def test_task_budgets_of_several_jobs_in_one_read(pat: Store) -> None:
    """What the matcher's guard reads: per budgeted job, what is left in escrow and how many
    tasks still share it (paid, failed and cancelled ones do not); unbudgeted tasks absent."""
    store = pat
    store.credits.grant("more", "pat", 90_000, NOW)
    first, (paid, waiting, other) = submit(store, quantity=3)
    second, (alone,) = submit(store)
    _, (free,) = submit(store)
    store.credits.hold(first, "pat", 9000, 0, NOW)
    store.credits.hold(second, "pat", 4000, 0, NOW)
    make(store, paid, "k1-m0")
    settled = store.reviews.accept(paid, "pat", NOW, TERMS, PER_KG)
    assert settled.payment is not None
    cost = -settled.payment.amount_for(cr.escrow_account(first))
    budgets = task_budgets(store.db, [waiting, other, alone, free])
    assert set(budgets) == {waiting, other, alone}
    assert (budgets[waiting].remaining_mc, budgets[waiting].tasks_left) == (9000 - cost, 2)
    assert budgets[other].per_task_mc == budgets[waiting].per_task_mc == (9000 - cost) // 2
    assert (budgets[alone].remaining_mc, budgets[alone].tasks_left) == (4000, 1)
    assert task_budgets(store.db, [free]) == {}


def test_concurrent_acceptances_pay_once(pat: Store) -> None:
    store = pat
    job_id, tasks = submit(store, quantity=2)
    store.credits.hold(job_id, "pat", 2500, 0, NOW)
    for task in tasks:
        make(store, task, "k1-m0", grams=0.0, hours=1.0)  # 1000 + 100 fee each
    errors: list[BaseException] = []

    def click(task: str) -> None:
        try:
            store.reviews.accept(task, "pat", NOW, TERMS, PER_KG)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(t,)) for t in tasks * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    paid = store.credits.postings(cr.PostingKind.PAYMENT)
    assert sorted(p.task_id or "" for p in paid) == sorted(tasks)
    assert store.credits.balance(cr.escrow_account(job_id)) == 300
    assert_books_balance(store)
