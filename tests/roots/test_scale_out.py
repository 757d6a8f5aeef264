"""Scale-out (issue 9): two ``fabnet hub --role dispatcher`` and two ``--role api`` processes on one
PostgreSQL database and one Mosquitto, two agent processes with sim machines. Jobs go in through
both APIs, each holding its budget from the requester's credits; one dispatcher is SIGKILLed
mid-run. Every task is done once and counted once in the ledger, both APIs keep answering, and
each part accepted through both APIs at the same moment is paid once, the books balanced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.core import credits as cr
from fabnet.core.states import AttemptCause, TaskState
from fabnet.lifetime import tied_popen
from fabnet.sim.makers import NetworkFiles, SimMachine, SimMaker, write_network
from fabnet.store import Store

MAKERS = tuple(
    SimMaker(agent, tuple(SimMachine(f"m{i}", "prusa_mk3s", "PLA", ("PLA",)) for i in range(3)))
    for agent in ("ada", "bruno")
)
SPEED = 3000.0  # a 20 mm cube in well under a second
JOBS_PER_API, PARTS_PER_JOB = 2, 6
RUN_TIMEOUT_S = 240.0
CAP_MC = 50_000  # a job's budget, far above what its parts cost


class Processes:
    """Child processes of one test, each logging to its own file; all ended at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as out:
            proc = tied_popen(
                [sys.executable, "-m", "fabnet.cli", "-v", *args],
                stdout=out,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            )
        self.procs[name] = proc
        return proc

    def started(self, name: str) -> bool:
        """True once ``name`` connected to the broker; fails the test if it exited."""
        proc = self.procs[name]
        assert proc.poll() is None, f"{name} exited: {self.log(name)[-3000:]}"
        return "connected to" in self.log(name)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def rig(tmp_path: Path, pg_url: str) -> Iterator[tuple[NetworkFiles, MosquittoBroker, Processes]]:
    broker_port = free_port()
    files = write_network(
        tmp_path,
        broker_port,
        MAKERS,
        http_port=free_port(),  # each api process is given its own; dispatchers serve none
        speed=SPEED,
        lease_s=60.0,
        offer_timeout_s=10.0,
        sweep_interval_s=0.3,
        database_url=pg_url,
    )
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users, accounts="dynsec")
    broker.start()
    procs = Processes(tmp_path)
    try:
        yield files, broker, procs
    finally:
        procs.stop_all()
        broker.stop()


def call(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def accept_through_both(bases: list[str], token: str, task_ids: list[str]) -> None:
    """Each part accepted through every API at the same moment (a double click landing on
    two processes): every answer is an acceptance, at most one of them paid."""
    answers: list[dict[str, Any]] = []

    def accept(base: str, task_id: str) -> None:
        answers.append(call(f"{base}/api/v1/tasks/{task_id}/accept", token, "POST"))

    for task_id in task_ids:
        threads = [threading.Thread(target=accept, args=(b, task_id)) for b in bases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(answers) == len(bases) * len(task_ids)
    assert all(a["review"] == "accepted" for a in answers)
    paid = Counter(a["task_id"] for a in answers if not a["already"])
    assert set(paid.values()) == {1} and len(paid) == len(task_ids), paid


def assert_books(store: Store, jobs: list[str], task_ids: list[str], granted: int) -> None:
    """Each task paid once, each job refunded the rest of its cap, every posting and the sum
    over all accounts balanced."""
    assert store.credits.unbalanced() == []
    balances = store.credits.balances()
    assert sum(balances.values()) == 0, balances
    payments = store.credits.postings(cr.PostingKind.PAYMENT)
    assert sorted(p.task_id or "" for p in payments) == sorted(task_ids)
    spent = -sum(p.amount_for(cr.escrow_account(p.job_id or "")) for p in payments)
    assert all(balances.get(cr.escrow_account(j), 0) == 0 for j in jobs), "not refunded"
    assert balances[cr.user_account("tester")] == granted - spent
    assert 0 < spent < len(jobs) * CAP_MC


def test_two_dispatchers_two_apis_one_dispatcher_killed_every_task_done_once(
    rig: tuple[NetworkFiles, MosquittoBroker, Processes], pg_url: str
) -> None:
    files, _broker, procs = rig
    hub = str(files.hub_config)
    apis = {name: f"http://127.0.0.1:{free_port()}" for name in ("api-1", "api-2")}
    for name, base in apis.items():
        procs.spawn(name, {"FABNET_HTTP_PORT": base.rsplit(":", 1)[1]}, "hub", "--config", hub,
                    "--role", "api")  # fmt: skip
        wait_for(lambda b=base: healthy(b), 60, f"{name} to answer")  # type: ignore[misc]
    # each dispatcher names its own API as where agents download G-code
    for name, base in zip(("dispatcher-1", "dispatcher-2"), apis.values(), strict=True):
        env = {"FABNET_HTTP_PUBLIC_URL": base}
        procs.spawn(name, env, "hub", "--config", hub, "--role", "dispatcher")
        wait_for(lambda n=name: procs.started(n), 60, f"{name} to connect")  # type: ignore[misc]
    for agent, path in files.agent_configs.items():
        env = {"FABNET_AGENT_HUB_URL": apis["api-1"]}
        procs.spawn(f"agent-{agent}", env, "agent", "--config", str(path))

    seed = Store(pg_url, create_tables=False)
    seed.accounts.add_user("tester", "password1", ["requester"], datetime.now(UTC))
    granted = 4 * JOBS_PER_API * CAP_MC
    seed.credits.grant("scale-out", "tester", granted, datetime.now(UTC))
    seed.close()
    jobs: list[str] = []
    for base in apis.values():
        for _ in range(JOBS_PER_API):
            body = {"design": "cube-xyz-20mm", "quantity": PARTS_PER_JOB, "material": "PLA",
                    "requester": "tester", "budget_cap_mc": CAP_MC}  # fmt: skip
            jobs.append(call(f"{base}/api/v1/jobs", files.api_token, "POST", body)["id"])
    total = len(jobs) * PARTS_PER_JOB
    bases = list(apis.values())

    def done_count() -> int:
        return sum(
            call(f"{bases[i % 2]}/api/v1/jobs/{job}", files.api_token)["done"]
            for i, job in enumerate(jobs)
        )

    wait_for(lambda: done_count() >= total // 4, RUN_TIMEOUT_S, "a quarter of the tasks done")
    victim = procs.procs["dispatcher-1"]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    at_kill = done_count()
    assert at_kill < total, "the dispatcher must die mid-run; make the run longer"

    wait_for(lambda: done_count() == total, RUN_TIMEOUT_S, f"all {total} tasks done")

    for name, base in apis.items():  # both APIs still answer, with the same figures
        assert healthy(base), f"{name} stopped answering"
        for job in jobs:
            shown = call(f"{base}/api/v1/jobs/{job}", files.api_token)
            assert (shown["state"], shown["done"]) == ("done", PARTS_PER_JOB), (name, shown)
    assert procs.procs["dispatcher-2"].poll() is None, procs.log("dispatcher-2")[-3000:]
    assert victim.returncode == -signal.SIGKILL

    store = Store(pg_url, create_tables=False)
    try:
        found = [t for job in jobs for t in store.tasks.find(job_id=job)]
        tasks = [store.tasks.get(t.task_id) for t in found]  # with their attempts
        assert len(tasks) == total and all(t.state is TaskState.DONE for t in tasks)
        entries = store.ledger.entries()
        assert sorted(e.task_id for e in entries) == sorted(t.task_id for t in tasks)
        assert sum(e.parts for e in entries) == total, "every part counted once"
        for task in tasks:  # done once: exactly one attempt ended in done
            ended_done = [a for a in task.attempts if a.cause is AttemptCause.DONE]
            assert len(ended_done) == 1, task
        accept_through_both(list(apis.values()), files.api_token, [t.task_id for t in tasks])
        assert_books(store, jobs, [t.task_id for t in tasks], granted)
    finally:
        store.close()
    # both dispatchers took part before the kill: the agents' events were split between them
    for name in ("dispatcher-1", "dispatcher-2"):
        assert "connected to" in procs.log(name), procs.log(name)[-3000:]
