"""The peer (beta) reporting back to the origin (alpha) over signed HTTP: a PROGRESS heartbeat
while its local task waits, STARTED once it runs, DONE with the ledger's grams and hours once
made, and the binding closed on the origin's acknowledgement; a STALE answer cancels the
local task; an unreachable or refusing origin leaves the binding open, and after a restart
(a new Store on the same database) the final report goes again with the same report id.

The origin here is a small signed Flask endpoint of the test's own (``Origin``) that records
the reports and answers what the test chooses: the origin's real ``ResultsInbox`` is built
in parallel (an edge fake, replaced by two real hubs once it lands)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, Response, request
from test_federation_intake import ORIGIN, Beta, make_beta, transfer
from werkzeug.serving import make_server

from fabnet.core import credits as cr
from fabnet.core import events as ev
from fabnet.core.machines import Machine, MachinePolicy
from fabnet.core.states import MachineKind, MachineState, TaskState
from fabnet.federation import signing as sg
from fabnet.federation import wire
from fabnet.federation.keys import HubKey
from fabnet.federation.reporting import Reporter
from fabnet.store.peers import Peers

MACHINE = "bruno/ender3-1"


@dataclass
class Origin:
    """alpha's side: records every report batch and answers ``outcome`` to each report
    (None: one result per report with ``APPLIED``); ``status`` other than 200 refuses."""

    key: HubKey = field(default_factory=HubKey.generate)
    batches: list[list[wire.TaskReport]] = field(default_factory=list)
    outcome: wire.ReportOutcome = wire.ReportOutcome.APPLIED
    status: int = 200
    url: str = ""

    def app(self) -> Flask:
        app = Flask("origin")

        @app.post(wire.REPORTS_PATH)
        def reports() -> Response:
            nonce = sg.parse_params(request.headers[sg.INPUT_HEADER], sg.REQUEST_COMPONENTS).nonce
            if self.status != 200:
                return Response(json.dumps({"message": "down for a moment"}), status=self.status)
            batch = wire.reports_from_json(request.get_json())
            self.batches.append(batch)
            results = [wire.ReportResult(r.report_id, self.outcome) for r in batch]
            raw = json.dumps(wire.results_json(results)).encode()
            answer = Response(raw, status=200, mimetype="application/json")
            created = int(datetime.now(UTC).timestamp())
            for name, value in sg.sign_response(self.key, ORIGIN, 200, raw, created,
                                                nonce).items():  # fmt: skip
                answer.headers[name] = value
            return answer

        return app

    @property
    def states(self) -> list[list[str]]:
        return [[r.state.value for r in batch] for batch in self.batches]


@contextmanager
def serving(origin: Origin) -> Iterator[Origin]:
    server = make_server("127.0.0.1", 0, origin.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield origin
    finally:
        server.shutdown()


@dataclass
class Pair:
    origin: Origin
    beta: Beta
    db_url: str
    library: Path

    def reporter(self, beta: Beta | None = None) -> Reporter:
        b = beta or self.beta
        return Reporter(b.store, b.peers, lambda: datetime.now(UTC))

    def task_id(self) -> str:
        binding = self.beta.foreign.get(ORIGIN, "a" * 32)
        assert binding is not None
        return binding.local_task_id

    def apply(self, *events: ev.TaskEvent) -> None:
        for event in events:
            self.beta.store.apply_event(self.task_id(), event, datetime.now(UTC))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    library = tmp_path / "designs"
    library.mkdir()
    url = f"sqlite:///{tmp_path / 'beta.db'}"
    with serving(Origin()) as origin:
        beta = make_beta(url, library, alpha_url=origin.url, alpha_key=origin.key.public.text)
        now = datetime.now(UTC)
        peers = Peers(beta.store.db)
        peers.record_hello(ORIGIN, now, inbound=True)
        peers.record_hello(ORIGIN, now, inbound=False)
        beta.store.catalog.add_maker("bruno", now, maker_id="bruno")
        beta.store.catalog.upsert_machine(Machine(
            machine_id=MACHINE, maker_id="bruno", kind=MachineKind.FDM,
            volume_mm=(250.0, 210.0, 210.0), nozzle_mm=0.4, materials=frozenset({"PLA"}),
            policy=MachinePolicy(auto_accept=True), state=MachineState.IDLE,
            profile="prusa_mk3s", name="ender3-1", last_seen=now))  # fmt: skip
        assert beta.receive(transfer())["accepted"]
        try:
            yield Pair(origin, beta, url, library)
        finally:
            beta.store.close()


def to_running(pair: Pair) -> None:
    pair.apply(ev.TaskOffered(machine_id=MACHINE, offer_s=600),
               ev.TaskAccepted(machine_id=MACHINE, offer_no=1),
               ev.TaskAssigned(machine_id=MACHINE, offer_no=1),
               ev.TaskStarted(machine_id=MACHINE, offer_no=1))  # fmt: skip


def test_progress_started_and_done_are_reported_and_close_the_binding(pair: Pair) -> None:
    reporter = pair.reporter()
    assert reporter.round() == {ORIGIN: "sent 1"}
    to_running(pair)
    assert reporter.round() == {ORIGIN: "sent 1"}
    pair.apply(ev.TaskProgressed(machine_id=MACHINE, offer_no=1, fraction=0.5))
    assert reporter.round() == {ORIGIN: "sent 1"}
    pair.apply(ev.TaskCompleted(machine_id=MACHINE, offer_no=1, grams=12.5, machine_hours=0.75))
    assert reporter.round() == {ORIGIN: "sent 1"}
    assert pair.origin.states == [["progress"], ["started"], ["progress"], ["done"]]
    heartbeat, started, running, done = (b[0] for b in pair.origin.batches)
    assert (heartbeat.origin_task_id, heartbeat.offer_no, heartbeat.fraction) == ("a" * 32, 1, 0)
    assert running.fraction == 0.5 and heartbeat.report_id != running.report_id
    assert started.report_id == f"{pair.task_id()}:1:started"
    assert (done.report_id, done.grams, done.machine_hours) == (
        f"{pair.task_id()}:1:done",
        12.5,
        0.75,
    )
    assert (
        done.charged_mc > 0
    )  # settlement.charge_peer_task: beta's price and fee, paid by peer:alpha
    binding = pair.beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and not binding.is_open and binding.closed_why == "done applied"
    assert reporter.round() == {}  # nothing open: nothing sent


def test_a_stale_answer_cancels_the_local_task(pair: Pair) -> None:
    to_running(pair)
    pair.origin.outcome = wire.ReportOutcome.STALE
    assert pair.reporter().round() == {ORIGIN: "sent 1"}
    assert pair.beta.store.tasks.get(pair.task_id()).state is TaskState.CANCELLED
    binding = pair.beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and not binding.is_open and "stale" in binding.closed_why
    assert pair.reporter().round() == {}


def test_a_done_task_re_offered_reports_done_at_once_under_the_new_offer(pair: Pair) -> None:
    to_running(pair)
    pair.apply(ev.TaskCompleted(machine_id=MACHINE, offer_no=1, grams=3, machine_hours=0.1))
    pair.origin.outcome = wire.ReportOutcome.STALE  # a late completion at the origin
    pair.reporter().round()
    pair.origin.outcome = wire.ReportOutcome.APPLIED
    assert pair.beta.receive(transfer(offer_no=2))["task_id"] == pair.task_id()
    assert pair.reporter().round() == {ORIGIN: "sent 1"}
    assert pair.origin.batches[-1][0].report_id == f"{pair.task_id()}:2:done"
    assert pair.beta.store.tasks.get(pair.task_id()).state is TaskState.DONE


def test_a_rejected_part_is_made_again_and_each_part_is_charged_once(pair: Pair) -> None:
    """The origin's requester rejected the part made here: the task comes back saying one part
    from here was rejected, so a second part is made (a new local job) and charged for; the same
    task coming back again after that part is done (a lapsed lease) is bound to it."""
    to_running(pair)
    pair.apply(ev.TaskCompleted(machine_id=MACHINE, offer_no=1, grams=3, machine_hours=0.1))
    assert pair.reporter().round() == {ORIGIN: "sent 1"}
    first_part = pair.task_id()
    first = pair.origin.batches[-1][0]
    assert (first.state, first.peer_task_id) == (wire.ReportState.DONE, first_part)
    second = pair.beta.receive(transfer(offer_no=2, rejected_parts=1))
    assert second["accepted"] and second["task_id"] != first_part
    binding = pair.beta.foreign.get(ORIGIN, "a" * 32)
    assert binding is not None and (binding.generation, binding.is_open) == (2, True)
    assert pair.task_id() == second["task_id"]
    pair.apply(ev.TaskOffered(machine_id=MACHINE, offer_s=600))
    offer = pair.beta.store.tasks.get(pair.task_id()).offer_no
    pair.apply(ev.TaskAccepted(machine_id=MACHINE, offer_no=offer),
               ev.TaskAssigned(machine_id=MACHINE, offer_no=offer),
               ev.TaskCompleted(machine_id=MACHINE, offer_no=offer, grams=3,
                                machine_hours=0.1))  # fmt: skip
    assert pair.reporter().round() == {ORIGIN: "sent 1"}
    done = pair.origin.batches[-1][0]
    assert (done.state, done.offer_no, done.peer_task_id) == (wire.ReportState.DONE, 2,
                                                              second["task_id"])  # fmt: skip
    assert done.charged_mc == first.charged_mc > 0  # each part charged, once
    charged = pair.beta.store.credits.balance(cr.peer_account(ORIGIN))
    assert charged == -2 * first.charged_mc
    # back once more with the same count of rejected parts: the second part is the one
    assert pair.beta.receive(transfer(offer_no=3, rejected_parts=1))["task_id"] == second["task_id"]
    assert len(pair.beta.store.jobs.find(requester="peer:alpha")) == 2


def test_a_refusing_origin_leaves_the_binding_open_and_a_restart_resends_the_same_report(
    pair: Pair,
) -> None:
    to_running(pair)
    pair.apply(ev.TaskCompleted(machine_id=MACHINE, offer_no=1, grams=4, machine_hours=0.2))
    pair.origin.status = 503
    answer = pair.reporter().round()
    assert "refused (503)" in answer[ORIGIN], answer
    assert pair.beta.foreign.get(ORIGIN, "a" * 32).is_open  # type: ignore[union-attr]
    pair.origin.status = 200
    pair.origin.outcome = wire.ReportOutcome.DUPLICATE  # as if alpha had applied it before
    task_id = pair.task_id()
    pair.beta.store.close()
    restarted = make_beta(pair.db_url, pair.library, add_alpha=False)
    try:
        assert pair.reporter(restarted).round() == {ORIGIN: "sent 1"}
        assert [r.report_id for r in pair.origin.batches[-1]] == [f"{task_id}:1:done"]
        assert not restarted.foreign.get(ORIGIN, "a" * 32).is_open  # type: ignore[union-attr]
    finally:
        restarted.store.close()


def test_an_unreachable_or_paused_origin_gets_nothing_and_keeps_the_binding(pair: Pair) -> None:
    pair.beta.peers.pause(ORIGIN)
    assert pair.reporter().round() == {ORIGIN: "peering is paused"}
    pair.beta.peers.resume(ORIGIN)
    pair.origin.status = 500
    assert "refused (500)" in pair.reporter().round()[ORIGIN]
    assert pair.origin.batches == []
    assert pair.beta.foreign.get(ORIGIN, "a" * 32).is_open  # type: ignore[union-attr]
