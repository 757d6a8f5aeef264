"""Two hubs as real processes (issue 12, "What it must show"): hub-a (SQLite, one FDM printer)
and hub-b (PostgreSQL, one CNC router), each from the hub.toml ``fabnet init hub`` wrote, with
its own Mosquitto and a ``fabnet agent`` of simulated machines; each reaches the other only
through a loopback proxy (the link). The operators peer them with ``fabnet peers key|add|hello``
each way; then each hub's federation tick advertises its capacity and the other sees it.

Then a requester at hub-a submits CNC jobs (``fabnet submit``): hub-a has no machine for them,
so they are made at hub-b and counted once at hub-a — also when hub-b's process is SIGKILLed
mid-task and restarted, and the link is cut and restored. In the end every part is done once
(one done attempt per task at hub-a, one done foreign task per part at hub-b) and the credits
between the hubs mirror each other with every posting balanced. A part the requester rejects is
made again at hub-b; she pays for the parts she accepted, hub-a's clearing account bears the
rejected one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from two_hubs_support import (
    LinkProxy,
    Site,
    Timings,
    make_site,
    peer_key,
    requester_token,
    until,
)

from fabnet.core import credits as cr
from fabnet.core.states import TaskState
from fabnet.federation import wire
from fabnet.federation.settlement import peer_balances
from fabnet.sim.makers import SimMachine, SimMaker
from fabnet.store import Store

A_MAKERS = (SimMaker("ada", (SimMachine("mk3s-1", "prusa_mk3s", "PLA", ("PLA",)),)),)
B_MAKERS = (SimMaker("dana", (SimMachine("shapeoko-ply", "shapeoko3", "plywood", ("plywood",)),)),)
UP_S = 40.0
B_SIM_SPEED = 50.0  # the face-shield frame's cut takes ~8 s: long enough to kill hub-b mid-task
MADE_S = 60.0
CNC_DESIGN = "faceshield-frame"  # MIT: openly licensed, so it may travel to a peer


@dataclass
class Pair:
    a: Site
    b: Site
    to_b: LinkProxy  # hub-a calls hub-b through it
    to_a: LinkProxy  # hub-b calls hub-a through it
    a_db: str
    b_db: str

    def cut(self) -> None:
        self.to_b.cut()
        self.to_a.cut()

    def restore(self) -> None:
        self.to_b.restore()
        self.to_a.restore()

    def logs(self) -> str:
        return f"{self.a.output()}\n{self.b.output()}"


@contextmanager
def two_hubs(tmp_path: Path, pg_url: str, timings: Timings) -> Iterator[Pair]:
    """hub-a and hub-b with their brokers, hubs and agents running, linked, not yet peered."""
    sites: list[Site] = []
    links: list[LinkProxy] = []
    try:
        sites.append(make_site(tmp_path, "hub-a", A_MAKERS, database_url=None, timings=timings))
        slow = replace(timings, sim_speed=B_SIM_SPEED)
        sites.append(make_site(tmp_path, "hub-b", B_MAKERS, database_url=pg_url, timings=slow))
        a, b = sites
        links += [LinkProxy(b.http_port), LinkProxy(a.http_port)]
        for site in sites:
            site.start_hub()
            site.start_agents()
        a_db = f"sqlite:///{a.folder / 'var' / 'fabnet.db'}"
        yield Pair(a, b, links[0], links[1], a_db, pg_url)
    finally:
        for link in links:
            link.cut()
        for site in sites:
            site.stop()


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[Pair]:
    with two_hubs(tmp_path, pg_url, Timings()) as linked:
        yield linked


def peer_up(pair: Pair) -> None:
    """What the two operators do: exchange keys, add each other (the URL each hub reaches the
    other at: the link), then say hello both ways."""
    a, b = pair.a, pair.b
    a.cli("peers", "add", b.name, "--url", pair.to_b.url, "--key", peer_key(b))
    b.cli("peers", "add", a.name, "--url", pair.to_a.url, "--key", peer_key(a))
    assert "not confirmed" in a.cli("peers", "hello", b.name)  # hub-b has not said hello yet
    assert " confirmed" in b.cli("peers", "hello", a.name).replace("not confirmed", "")
    for site in (a, b):
        assert all(p["confirmed"] for p in site.api("GET", "/peers")), site.name


def capacity_of(site: Site, peer: str) -> dict[str, Any] | None:
    """``peer``'s latest capacity summary as ``site`` keeps it, if fresh."""
    for entry in site.api("GET", "/peers/capacity"):
        if entry["peer"] == peer and entry["fresh"]:
            return dict(entry["summary"])
    return None


def idle_line(summary: dict[str, Any] | None, kind: str, material: str) -> bool:
    return summary is not None and any(
        line["kind"] == kind and line["material"] == material and line["idle"] >= 1
        for line in summary["lines"]
    )


def test_peered_hubs_see_each_others_capacity(pair: Pair) -> None:
    peer_up(pair)
    a, b = pair.a, pair.b
    until(lambda: idle_line(capacity_of(a, b.name), "cnc", "plywood"), UP_S,
          "hub-a to hold hub-b's fresh capacity with an idle CNC router", pair.logs)  # fmt: skip
    until(lambda: idle_line(capacity_of(b, a.name), "fdm", "PLA"), UP_S,
          "hub-b to hold hub-a's fresh capacity with an idle FDM printer", pair.logs)  # fmt: skip
    assert not idle_line(capacity_of(a, b.name), "fdm", "PLA")  # hub-b has no printer


def submit(site: Site, token: str, quantity: int) -> str:
    out = site.cli("submit", CNC_DESIGN, "--quantity", str(quantity), "--material", "plywood",
                   token=token)  # fmt: skip
    return out.split()[1].rstrip(":")


def job_state(site: Site, job_id: str) -> str:
    return str(site.api("GET", f"/jobs/{job_id}")["state"])


def tasks_in(site: Site, job_id: str, state: str) -> list[dict[str, Any]]:
    return [t for t in site.api("GET", f"/jobs/{job_id}")["task_list"] if t["state"] == state]


def check_made_once_at_b(pair: Pair, job_id: str, quantity: int) -> None:
    """hub-a's job is done: ``quantity`` tasks, each with exactly one done attempt, by
    hub-b's pseudo-machine."""
    a = pair.a
    job = a.api("GET", f"/jobs/{job_id}")
    assert job["state"] == "done" and job["done"] == quantity, job
    assert len(job["task_list"]) == quantity, job
    for task in job["task_list"]:
        attempts = a.api("GET", f"/tasks/{task['id']}")["attempts"]
        done = [x for x in attempts if x["cause"] == "done"]
        assert len(done) == 1, attempts
        assert done[0]["machine"] == wire.peer_machine_id(pair.b.name), attempts


def foreign_done_tasks(url: str, origin: str) -> int:
    """Tasks done at the peer for jobs of requester ``peer:<origin>``."""
    store = Store(url)
    try:
        return sum(
            info.tasks_by_state.get(TaskState.DONE, 0)
            for info in store.jobs.find(requester=wire.peer_requester(origin))
        )
    finally:
        store.close()


def ledger(url: str) -> tuple[dict[str, int], list[str]]:
    """Each peer's balance here and the keys of unbalanced postings."""
    store = Store(url)
    try:
        return peer_balances(store), store.credits.unbalanced()
    finally:
        store.close()


def check_credits_mirrored(pair: Pair) -> None:
    """hub-a's balance of peer:hub-b is minus hub-b's of peer:hub-a, above zero (hub-b charged
    for its work), and neither hub has an unbalanced posting."""
    a, b = pair.a, pair.b

    def mirrored() -> bool:
        (at_a, a_bad), (at_b, b_bad) = ledger(pair.a_db), ledger(pair.b_db)
        return at_a.get(b.name, 0) == -at_b.get(a.name, 0) > 0 and not a_bad and not b_bad

    until(mirrored, 10, "hub-a's peer:hub-b == -(hub-b's peer:hub-a) > 0, postings balanced",
          lambda: f"{ledger(pair.a_db)} {ledger(pair.b_db)}\n{pair.logs()}")  # fmt: skip


def test_cnc_job_is_made_at_the_peer_once_through_a_kill_and_a_cut(pair: Pair) -> None:
    peer_up(pair)
    a, b = pair.a, pair.b
    until(lambda: idle_line(capacity_of(a, b.name), "cnc", "plywood"), UP_S,
          "hub-a to see hub-b's idle CNC router", pair.logs)  # fmt: skip
    rita = requester_token(a, "rita")

    first = submit(a, rita, 1)
    until(lambda: job_state(a, first) == "done", MADE_S, "the first CNC job done", pair.logs)
    check_made_once_at_b(pair, first, 1)
    assert foreign_done_tasks(pair.b_db, a.name) == 1

    second = submit(a, rita, 2)
    until(lambda: tasks_in(a, second, "running"), MADE_S,
          "a part of the second job running at hub-b", pair.logs)  # fmt: skip
    b.kill_hub()  # mid-task: its agent goes on cutting, its reports stop
    time.sleep(2)
    b.start_hub()
    pair.cut()
    time.sleep(3)
    pair.restore()
    until(lambda: job_state(a, second) == "done", MADE_S, "the second CNC job done", pair.logs)
    check_made_once_at_b(pair, second, 2)
    assert foreign_done_tasks(pair.b_db, a.name) == 3  # one part made per part asked for

    check_credits_mirrored(pair)

    # the requester rejects the first job's part: hub-b makes it again, and is owed both
    (rejected,) = [t["id"] for t in a.api("GET", f"/jobs/{first}")["task_list"]]
    a.api("POST", f"/tasks/{rejected}/reject", token=rita, body={"reason": "damaged"})
    until(lambda: job_state(a, first) == "done", MADE_S, "the rejected part made again",
          pair.logs)  # fmt: skip
    causes = [x["cause"] for x in a.api("GET", f"/tasks/{rejected}")["attempts"]]
    assert causes == ["done", "done"], causes
    assert foreign_done_tasks(pair.b_db, a.name) == 4  # 3 parts asked for, 1 made again
    check_credits_mirrored(pair)
    accept_all(pair, rita, [first, second])


def accept_all(pair: Pair, token: str, job_ids: list[str]) -> None:
    """The requester accepts every part (one twice) at hub-a: she pays what hub-b charged for
    the parts she accepted plus hub-a's fee; the federation clearing account is left bearing
    the part she rejected; the books balance."""
    a = pair.a
    tasks = [t["id"] for job in job_ids for t in a.api("GET", f"/jobs/{job}")["task_list"]]
    for task_id in [*tasks, tasks[0]]:
        a.api("POST", f"/tasks/{task_id}/accept", token=token)
    store = Store(pair.a_db)
    try:
        owed = peer_balances(store)[pair.b.name]
        paid = -store.credits.balance(cr.user_account("rita"))
        fees = store.credits.balance(cr.FEE_ACCOUNT)
        rejected_part = -store.credits.balance(cr.FEDERATION_ACCOUNT)
        assert fees > 0 and rejected_part > 0, (fees, rejected_part)
        assert paid == owed - rejected_part + fees, (paid, owed, rejected_part, fees)
        assert store.credits.unbalanced() == []
    finally:
        store.close()


# A peer's capacity believed for less than its lease: when the lease runs out during a cut,
# hub-a does not try hub-b again until hub-b advertises after the link is back
LEASE_TIMINGS = Timings(federation={
    "tick_s": 1, "advertise_every_s": 2, "capacity_max_age_s": 6, "peer_lease_s": 12,
    "overflow_after_s": 2, "transfer_timeout_s": 10})  # fmt: skip


def test_a_peer_silent_past_its_lease_loses_the_task_and_its_late_part_counts_once(
    tmp_path: Path, pg_url: str
) -> None:
    """The link is cut while hub-b cuts the part, for longer than the peer lease: hub-a takes
    the task back (lease expired). Once the link is back, hub-b's late "done" is recorded
    (stale) and hub-a sends the task again, which hub-b binds to the part it already made:
    done once at each hub, charged once."""
    with two_hubs(tmp_path, pg_url, LEASE_TIMINGS) as pair:
        peer_up(pair)
        a, b = pair.a, pair.b
        until(lambda: idle_line(capacity_of(a, b.name), "cnc", "plywood"), UP_S,
              "hub-a to see hub-b's idle CNC router", pair.logs)  # fmt: skip
        job = submit(a, requester_token(a, "rita"), 1)
        until(lambda: tasks_in(a, job, "running"), MADE_S, "the part running at hub-b",
              pair.logs)  # fmt: skip
        pair.cut()
        until(lambda: tasks_in(a, job, "queued"), 30,  # the lease, the sweep and slack
              "hub-a to take the task back from silent hub-b", pair.logs)  # fmt: skip
        pair.restore()
        until(lambda: job_state(a, job) == "done", MADE_S, "the job done", pair.logs)
        check_made_once_at_b(pair, job, 1)
        task = a.api("GET", f"/jobs/{job}")["task_list"][0]
        causes = [x["cause"] for x in a.api("GET", f"/tasks/{task['id']}")["attempts"]]
        assert causes == ["lease_expired", "done"], causes
        assert foreign_done_tasks(pair.b_db, a.name) == 1  # the part was made once
        check_credits_mirrored(pair)
