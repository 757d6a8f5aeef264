"""Credits in the core: balanced postings, integer prices and fees, budgets, quotes, and the
rejection of a done task (once) in the task state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fabnet.core import credits as cr
from fabnet.core import quotes
from fabnet.core.events import (
    TaskAccepted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskOffered,
    TaskRejected,
)
from fabnet.core.lifecycle import apply
from fabnet.core.states import IgnoreReason, TaskState, TransitionCause
from fabnet.core.tasks import Ignored, TaskSnapshot, Transition
from fabnet.errors import InvalidInput

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_a_posting_must_balance_and_have_two_legs() -> None:
    legs = (cr.Leg("user:a", -5), cr.Leg("user:b", 4))
    with pytest.raises(InvalidInput, match="does not balance: legs sum to -1"):
        cr.Posting("k", cr.PostingKind.GRANT, legs, NOW)
    with pytest.raises(InvalidInput, match="at least two legs"):
        cr.Posting("k", cr.PostingKind.GRANT, (cr.Leg("user:a", 5),), NOW)
    with pytest.raises(InvalidInput, match="must move credits"):
        cr.Leg("user:a", 0)
    with pytest.raises(InvalidInput, match="integer of milli-credits"):
        cr.Leg("user:a", 1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="naive|time zone|UTC"):
        cr.transfer("k", cr.PostingKind.GRANT, "a", "b", 1, datetime(2026, 1, 1))


def test_transfer_moves_from_source_to_target() -> None:
    p = cr.transfer("grant:1", cr.PostingKind.GRANT, cr.ISSUE_ACCOUNT, "user:a", 2500, NOW)
    assert p.amount_for("user:a") == 2500
    assert p.amount_for(cr.ISSUE_ACCOUNT) == -2500
    with pytest.raises(InvalidInput, match="must be > 0"):
        cr.transfer("k", cr.PostingKind.GRANT, "a", "b", -1, NOW)
    with pytest.raises(InvalidInput, match="two accounts"):
        cr.transfer("k", cr.PostingKind.GRANT, "a", "a", 1, NOW)


def test_prices_are_integers_rounded_once() -> None:
    # 1.5 h at 2 credits/h + 100 g at 25 credits/kg = 3 + 2.5 credits
    assert cr.price_mc(2000, 25_000, 1.5, 100.0) == 5500
    assert cr.price_mc(1000, 0, 0.0004, 0.0) == 0  # 0.4 mc rounds down
    assert cr.price_mc(1000, 0, 0.0005, 0.0) == 1  # half rounds up
    assert cr.default_per_kg_mc(25.0, 1000) == 25_000  # 25 EUR/kg at 1 EUR per credit
    assert cr.default_per_kg_mc(25.0, 500) == 50_000  # a credit worth 0.50 EUR
    with pytest.raises(InvalidInput, match="grams must be >= 0"):
        cr.price_mc(1, 1, 1.0, -1.0)


@given(st.integers(0, 10**12), st.integers(0, cr.MAX_FEE_BP))
def test_split_total_adds_up_and_inverts_with_fee(price: int, fee_bp: int) -> None:
    total = cr.with_fee(price, fee_bp)
    share, fee = cr.split_total(total, fee_bp)
    assert share + fee == total
    assert share >= 0 and fee >= 0
    assert abs(share - price) <= 1


def test_payment_is_capped_by_what_is_left_in_escrow() -> None:
    escrow = cr.escrow_account("j1")
    full = cr.payment("t1", "j1", escrow, "user:m", 10_000, 1000, 50_000, NOW)
    assert full is not None and full.key == "pay:t1"
    assert full.amount_for("user:m") == 10_000 and full.amount_for(cr.FEE_ACCOUNT) == 1000
    capped = cr.payment("t1", "j1", escrow, "user:m", 10_000, 1000, 5500, NOW)
    assert capped is not None and capped.amount_for(escrow) == -5500
    assert capped.amount_for("user:m") + capped.amount_for(cr.FEE_ACCOUNT) == 5500
    assert cr.payment("t1", "j1", escrow, "user:m", 10_000, 1000, 0, NOW) is None
    assert cr.payment("t1", "j1", escrow, "user:m", 0, 1000, None, NOW) is None


def test_own_part_without_escrow_moves_only_the_fee() -> None:
    p = cr.payment("t1", "j1", "user:pat", "user:pat", 10_000, 1000, None, NOW)
    assert p is not None and p.amount_for("user:pat") == -1000
    assert cr.payment("t1", "j1", "user:pat", "user:pat", 10_000, 0, None, NOW) is None


def test_commit_and_debt_limit() -> None:
    assert cr.can_commit(10_000, 10_000, 0)
    assert not cr.can_commit(10_000, 10_001, 0)
    assert cr.can_commit(10_000, 15_000, 5000)
    assert not cr.can_commit(-1, 0, 0)


def test_budget_rule_for_the_matcher() -> None:
    price = cr.MachinePrice("a/m", per_hour_mc=2000, per_kg_mc={"PLA": 30_000})
    # 1 h + 100 g: 2000 + 3000 = 5000, +10 % fee = 5500
    assert cr.fits_budget(price, "PLA", 25_000, 1.0, 100.0, 1000, 5500)
    assert not cr.fits_budget(price, "PLA", 25_000, 1.0, 100.0, 1000, 5499)
    assert cr.fits_budget(price, "PLA", 25_000, 1.0, 100.0, 1000, None)
    # PETG has no price on this machine: the default per kg applies (2000 + 2500, + fee 450)
    assert cr.fits_budget(price, "PETG", 25_000, 1.0, 100.0, 1000, 4950)
    assert not cr.fits_budget(price, "PETG", 25_000, 1.0, 100.0, 1000, 4949)
    assert cr.task_budget_mc(10_000, 3) == 3333
    assert cr.task_budget_mc(10_000, 0) == 10_000


def test_quote_lowest_typical_highest_and_eta() -> None:
    cands = [
        quotes.Candidate("a/fast", "a", 2.0, 4000, 25_000),
        quotes.Candidate("b/slow", "b", 1.0, 1000, 25_000),
        quotes.Candidate("c/dear", "c", 1.0, 9000, 50_000),
    ]
    q = quotes.quote(cands, hours_per_part=2.0, grams_per_part=40.0, quantity=3, fee_bp=1000)
    # a: 1 h * 4000 + 40 g * 25 = 5000 -> 5500; b: 2000 + 1000 -> 3300; c: 18000 + 2000 -> 22000
    assert [m.machine_id for m in q.machines] == ["b/slow", "a/fast", "c/dear"]
    assert (q.lowest_mc, q.typical_mc, q.highest_mc) == (9900, 16500, 66000)
    assert q.eta_hours == pytest.approx(6.0 / 4.0)
    assert quotes.quote([], 1.0, 1.0, 1, 0).lowest_mc is None
    # a long queue dominates; one part never beats its own time on the fastest machine
    assert quotes.eta_hours(40.0, 1.0, 1, [1.0, 1.0]) == pytest.approx(21.0)
    assert quotes.eta_hours(0.0, 4.0, 1, [1.0, 1.0, 1.0, 1.0]) == pytest.approx(4.0)


def test_terms_are_checked() -> None:
    with pytest.raises(InvalidInput, match="fee_percent must be 0..50"):
        cr.Terms(fee_bp=6000)
    with pytest.raises(InvalidInput, match="currency must be three capital letters"):
        cr.Terms(currency="euro")
    with pytest.raises(InvalidInput, match="allow_debt_credits must be >= 0"):
        cr.Terms(debt_limit_mc=-1)
    with pytest.raises(InvalidInput, match="per_kg_mc.PLA must be >= 0"):
        cr.MachinePrice("a/m", per_kg_mc={"PLA": -1})


def _done(task: TaskSnapshot, machine: str, at: datetime) -> TaskSnapshot:
    for event in (
        TaskOffered(machine_id=machine),
        TaskAccepted(machine_id=machine, offer_no=task.offer_no + 1),
        TaskAssigned(machine_id=machine, offer_no=task.offer_no + 1),
        TaskCompleted(machine_id=machine, offer_no=task.offer_no + 1, grams=5, machine_hours=1),
    ):
        out = apply(task, event, at)
        assert isinstance(out, Transition), out
        task = out.task
    return task


def test_a_done_task_is_rejected_back_to_the_queue_once() -> None:
    task = _done(TaskSnapshot("t1", "j1", max_attempts=2), "a/m1", NOW)
    out = apply(task, TaskRejected(reason="damaged"), NOW)
    assert isinstance(out, Transition)
    assert (out.from_state, out.to_state, out.cause) == (
        TaskState.DONE,
        TaskState.QUEUED,
        TransitionCause.REJECTED,
    )
    again = apply(out.task, TaskRejected(reason="damaged"), NOW)
    assert isinstance(again, Ignored) and again.reason is IgnoreReason.WRONG_STATE
    # the rejected done attempt uses none of the remake's attempts: one failure leaves one
    task = out.task
    for event in (TaskOffered(machine_id="b/m1"), TaskAccepted(machine_id="b/m1", offer_no=2)):
        step = apply(task, event, NOW)
        assert isinstance(step, Transition)
        task = step.task
    failed = apply(task, TaskFailed(machine_id="b/m1", offer_no=2), NOW)
    assert isinstance(failed, Transition) and failed.to_state is TaskState.QUEUED
    redone = _done(failed.task, "c/m1", NOW + timedelta(hours=1))
    second = apply(redone, TaskRejected(reason="failed_print"), NOW + timedelta(hours=2))
    assert isinstance(second, Ignored) and second.detail == "task was rejected once already"


def test_only_a_done_task_can_be_rejected() -> None:
    out = apply(TaskSnapshot("t1", "j1"), TaskRejected(reason="damaged"), NOW)
    assert isinstance(out, Ignored) and out.reason is IgnoreReason.WRONG_STATE
    with pytest.raises(InvalidInput, match="reason must not be empty"):
        TaskRejected(reason="")
