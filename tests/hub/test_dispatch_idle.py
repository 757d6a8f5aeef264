"""An idle dispatcher's tick: one read (``Tasks.due``) says nothing is due, so it opens no
write transaction — several dispatcher processes each tick on their own, and each idle tick's
sweeps and offer round were a fixed cost per process. ``due`` itself on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dispatch_support import LEASE_S, OFFER_S, Rig, make_rig
from sqlalchemy import event

from fabnet.bus import messages as m
from fabnet.core import events as ev


@pytest.fixture(params=["sqlite", "postgresql"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    yield from make_rig(tmp_path, url)


def statements(rig: Rig) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(rig.store.db.engine, "before_cursor_execute", before)
    return seen


def test_an_idle_tick_is_one_read(rig: Rig) -> None:
    rig.status("m1")  # an idle machine, nothing queued, nothing offered or leased
    rig.tick()
    rig.clock.advance(3600)  # past every refresh period (fairness, recovery)
    seen = statements(rig)
    for _ in range(3):
        rig.tick()
        rig.clock.advance(60)
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 3, seen
    assert all("FOR UPDATE" not in s for s in reads), reads
    # nothing else but SQLite's plain BEGIN of a read (a write opens with BEGIN IMMEDIATE)
    assert all(s in reads or s.strip().upper() == "BEGIN" for s in seen), seen


def test_due_names_the_earliest_expiries_the_oldest_claim_and_the_queue(rig: Rig) -> None:
    due = rig.store.tasks.due()
    assert (due.lease_until, due.offer_until, due.claimed_since, due.queued) == (
        None, None, None, False,
    )  # fmt: skip
    rig.submit(quantity=2)
    assert rig.store.tasks.due().queued
    offered_at = rig.clock.now
    rig.status("m1")
    offer = rig.wait_sent(m.TaskOffer)[0]
    assert isinstance(offer, m.TaskOffer)
    due = rig.store.tasks.due()
    assert due.offer_until == offered_at + timedelta(seconds=OFFER_S)
    assert due.queued and due.lease_until is None and due.claimed_since is None
    rig.clock.advance(10)
    claimed_at = rig.clock.now
    # the claim alone, without the dispatcher producing it (as an API process would apply it)
    rig.dispatcher.stop()
    rig.store.apply_events(
        [
            (
                offer.task_id,
                ev.TaskAccepted(machine_id="ada/m1", offer_no=offer.attempt, lease_s=LEASE_S),
            )
        ],
        claimed_at,
    )
    due = rig.store.tasks.due()
    assert due.claimed_since == claimed_at
    assert due.lease_until == claimed_at + timedelta(seconds=LEASE_S)
    assert due.offer_until is None and due.queued
