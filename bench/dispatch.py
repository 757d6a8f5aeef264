"""End-to-end dispatch against the broker's own speed, in one run on one Mosquitto (issue 9):

    .venv/bin/python bench/dispatch.py [--agents 10] [--machines 10] [--tasks 1000]
        [--job-size 50] [--store postgresql://postgres@127.0.0.1:5432/postgres]
        [--dispatchers N] [--pings 2000] [--idle 10] [--keep DIR]

(a) a bare paho pair (the hub's and one agent's broker login, QoS 1, one message in flight)
makes ``--pings`` round trips: round trips/s; (b) ``--agents`` real ``fabnet agent`` processes
with ``--machines`` sim machines each, of zero run time, work through ``--tasks`` cube tasks
submitted through the REST API in jobs of ``--job-size``: lifecycles/s (tasks over the time from
the first submission to the last task done, from the store's own timestamps), and (b)/(a).
Beside them: the hub's CPU ms per lifecycle (user + system of the hub process(es), from /proc),
the agents' likewise, offer->done p50/p99 (each task's last offer to its done, from the
store's task events), offers made per lifecycle (1.0 when no offer was declined or lapsed) and,
measured before the tasks are submitted, the hub processes' CPU ms per second with every
machine idle and nothing queued (``--idle`` s): the fixed cost of their ticks.

``--store`` a PostgreSQL server URL: a throwaway database is made there and dropped after.
``--dispatchers N`` (PostgreSQL only): N ``fabnet hub --role dispatcher`` processes and one
``--role api`` on a dynamic-security broker; without it, one ``fabnet hub`` (role all).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import create_engine, func, make_url, select, text

from fabnet.bus.broker import DYNSEC, FILE, MosquittoBroker, free_port
from fabnet.lifetime import tied_popen
from fabnet.sim.makers import SimMachine, SimMaker, write_network
from fabnet.store import Store
from fabnet.store.models import EventRow, MachineRow, TaskRow

DESIGN = "cube-xyz-20mm"
PROFILE = "prusa_mk3s"
ZERO_RUN = "speed = 1000000.0\nmin_duration_s = 0.0\n"  # sim driver options: no run time
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """What was run and what it measured."""

    label: str
    round_trips_s: float = 0.0
    round_trips_nagle_s: float = 0.0  # the same pair without TCP_NODELAY
    lifecycles_s: float = 0.0
    done: int = 0
    wall_s: float = 0.0
    hub_cpu_ms: float = 0.0  # per lifecycle
    agent_cpu_ms: float = 0.0  # per lifecycle
    p50_s: float = 0.0
    p99_s: float = 0.0
    idle_cpu_ms_s: float = 0.0  # hub CPU ms per second, every machine idle and nothing queued
    offers: int = 0  # offers made (a declined or lapsed one is offered again)


# -- the broker alone ------------------------------------------------------------------------


def paho_round_trips(
    port: int, users: dict[str, str], agent: str, n: int, nodelay: bool = True
) -> float:
    """QoS 1 round trips per second of two paho clients: the hub's login sends on the agent's
    commands topic, the agent's login answers on its events topic, one message in flight.
    ``nodelay``: TCP_NODELAY on the clients' sockets (paho leaves Nagle's algorithm on, so a
    PUBACK followed by a PUBLISH waits for the peer's delayed ACK, ~40 ms on Linux)."""
    commands = f"fabnet/v1/agents/{agent}/commands"
    events = f"fabnet/v1/agents/{agent}/machines/bench/events"
    back = threading.Event()

    def client(user: str, client_id: str, topic: str) -> mqtt.Client:
        """A connected client of ``user`` subscribed to ``topic`` (QoS 1)."""
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=MQTTProtocolVersion.MQTTv5)
        c.username_pw_set(user, users[user])
        c.max_inflight_messages_set(1)
        ready = threading.Event()
        c.on_connect = lambda cl, u, flags, rc, props: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda cl, u, mid, codes, props: ready.set()
        c.connect("127.0.0.1", port)
        if nodelay:
            sock = c.socket()
            assert isinstance(sock, socket.socket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.loop_start()
        if not ready.wait(10):
            raise RuntimeError(f"{user} could not subscribe to {topic}")
        return c

    def answer(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        c.publish(events, msg.payload, qos=1)

    def answered(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        back.set()

    pong = client(agent, agent, commands)
    pong.on_message = answer
    ping = client("hub", f"bench-ping-{uuid.uuid4().hex[:8]}", events)
    ping.on_message = answered
    try:
        for _ in range(min(100, n)):  # warm-up
            _ping_once(ping, commands, back)
        started = time.perf_counter()
        for _ in range(n):
            _ping_once(ping, commands, back)
        return n / (time.perf_counter() - started)
    finally:
        for c in (ping, pong):
            c.disconnect()
            c.loop_stop()


def _ping_once(ping: mqtt.Client, topic: str, back: threading.Event) -> None:
    back.clear()
    ping.publish(topic, b'{"bench": 1}', qos=1)
    if not back.wait(10):
        raise RuntimeError("a QoS 1 round trip took over 10 s")


# -- the network -----------------------------------------------------------------------------


@contextmanager
def database(store: str | None, root: Path, keep: bool) -> Iterator[str]:
    """SQLite in ``root``, or a throwaway database on the PostgreSQL server ``store``."""
    if not store:
        yield f"sqlite:///{root / 'hub' / 'fabnet.db'}"
        return
    server = make_url(store).set(drivername="postgresql+psycopg2")
    name = f"fabnet_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database=server.database or "postgres"),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def makers(agents: int, machines: int) -> tuple[SimMaker, ...]:
    return tuple(
        SimMaker(
            f"a{i:03d}",
            tuple(SimMachine(f"m{j:02d}", PROFILE, "PLA", ("PLA",)) for j in range(machines)),
        )  # fmt: skip
        for i in range(agents)
    )


def spawn(log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return tied_popen([sys.executable, "-m", "fabnet.cli", *args], stdout=out, stderr=out)


def cpu_s(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds the processes used so far (/proc/<pid>/stat)."""
    total = 0
    for p in procs:
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def wait_for(what: str, timeout_s: float, check: Callable[[], bool], procs: list[Any]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0]} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.5)


def http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def submit(url: str, token: str, tasks: int, job_size: int) -> None:
    """``tasks`` cube tasks through POST /api/v1/jobs, ``job_size`` to a job."""
    left = tasks
    while left:
        n = min(job_size, left)
        body = {"design": DESIGN, "quantity": n, "material": "PLA", "requester": "bench"}
        request = urllib.request.Request(
            f"{url}/api/v1/jobs", json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status in (200, 201), answer.status
        left -= n


def count(store: Store, query: Any) -> int:
    with store.db.read() as s:
        return int(s.scalar(query) or 0)


def offer_to_done_s(store: Store) -> list[float]:
    """Per done task: seconds from its last ``offered`` to ``done`` (the store's event times)."""
    query = select(EventRow.task_id, EventRow.to_state, EventRow.at).where(
        EventRow.to_state.in_(("offered", "done"))
    )
    offered: dict[str, datetime] = {}
    done: dict[str, datetime] = {}
    with store.db.read() as s:
        for task_id, state, at in s.execute(query):
            into = offered if state == "offered" else done
            into[task_id] = max(at, into.get(task_id, at))
    return sorted((done[t] - offered[t]).total_seconds() for t in done if t in offered)


def last_done(store: Store) -> datetime:
    query = select(func.max(EventRow.at)).where(EventRow.to_state == "done")
    with store.db.read() as s:
        at = s.scalar(query)
    assert at is not None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def run(args: argparse.Namespace, root: Path) -> Run:
    n_machines = args.agents * args.machines
    with database(args.store, root, bool(args.keep)) as db_url:
        hub_port, broker_port = free_port(), free_port()
        files = write_network(root, broker_port, makers(args.agents, args.machines),
                              http_port=hub_port, speed=1e6, lease_s=120.0, offer_timeout_s=30.0,
                              sweep_interval_s=0.5, database_url=db_url)  # fmt: skip
        for path in files.agent_configs.values():
            path.write_text(path.read_text().replace("speed = 1000000.0\n", ZERO_RUN))
        hub_url = f"http://127.0.0.1:{hub_port}"
        if args.dispatchers:
            toml = files.hub_config.read_text().replace(
                "[http]\n", f'[http]\npublic_url = "{hub_url}"\n'
            )
            files.hub_config.write_text(toml.replace("[broker]\n", '[broker]\naccounts = "dynsec"\n'))  # fmt: skip
        broker = MosquittoBroker(root / "broker", broker_port,
                                 users=files.users, accounts=DYNSEC if args.dispatchers else FILE)  # fmt: skip
        broker.start()
        hubs: list[subprocess.Popen[bytes]] = []
        agents: list[subprocess.Popen[bytes]] = []
        store: Store | None = None
        try:
            first_agent = next(iter(files.agent_configs))
            result = Run(label(args))
            result.round_trips_s = paho_round_trips(
                broker.port, files.users, first_agent, args.pings
            )
            result.round_trips_nagle_s = paho_round_trips(
                broker.port, files.users, first_agent, min(args.pings, 200), nodelay=False
            )
            config = str(files.hub_config)
            # the api (or only) process first: it makes the tables; hub processes starting
            # together on an empty PostgreSQL database race to create them and all but one fail
            role = ("--role", "api") if args.dispatchers else ()
            hubs.append(spawn(root / "hub.log", "hub", *role, "--config", config))
            wait_for("the hub's HTTP", 60, lambda: http_up(hub_url), hubs)
            for i in range(args.dispatchers):
                hubs.append(spawn(root / f"hub-dispatcher-{i}.log", "hub", "--role",
                                  "dispatcher", "--config", config))  # fmt: skip
            store = Store(db_url, create_tables=False)
            for agent_id, path in files.agent_configs.items():
                agents.append(spawn(root / f"agent-{agent_id}.log", "agent", "--config", str(path)))
            idle = select(func.count()).select_from(MachineRow).where(MachineRow.state == "idle")
            wait_for(f"{n_machines} idle machines", 60 + 2 * args.agents,
                     lambda: count(store, idle) >= n_machines, hubs + agents)  # fmt: skip
            if args.idle:
                time.sleep(2)  # the machines' first statuses handled
                idle_cpu, idle_at = cpu_s(hubs), time.monotonic()
                time.sleep(args.idle)
                spent = cpu_s(hubs) - idle_cpu
                result.idle_cpu_ms_s = 1000 * spent / (time.monotonic() - idle_at)
            hub_cpu, agent_cpu = cpu_s(hubs), cpu_s(agents)
            started = datetime.now(UTC)
            submit(hub_url, files.api_token, args.tasks, args.job_size)
            done = select(func.count()).select_from(TaskRow).where(TaskRow.state == "done")
            wait_for(f"{args.tasks} tasks done", args.timeout,
                     lambda: count(store, done) >= args.tasks, hubs + agents)  # fmt: skip
            result.hub_cpu_ms = 1000 * (cpu_s(hubs) - hub_cpu) / args.tasks
            result.agent_cpu_ms = 1000 * (cpu_s(agents) - agent_cpu) / args.tasks
            result.done = args.tasks
            result.wall_s = (last_done(store) - started).total_seconds()
            result.lifecycles_s = args.tasks / result.wall_s
            offered = (
                select(func.count()).select_from(EventRow).where(EventRow.to_state == "offered")
            )
            result.offers = count(store, offered)
            latencies = offer_to_done_s(store)
            result.p50_s = statistics.median(latencies)
            result.p99_s = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            return result
        finally:
            stop(agents + hubs)
            if store is not None:
                store.close()
            broker.stop()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def label(args: argparse.Namespace) -> str:
    store = "PostgreSQL" if args.store else "SQLite"
    hubs = (f"{args.dispatchers} dispatcher(s) + 1 api" if args.dispatchers
            else "1 hub (role all)")  # fmt: skip
    return f"{args.agents} agents x {args.machines} machines, {args.tasks} tasks, {store}, {hubs}"


def table(r: Run) -> str:
    ratio = r.lifecycles_s / r.round_trips_s if r.round_trips_s else 0.0
    rows = [
        ("paho QoS 1 round trips/s (a)", f"{r.round_trips_s:,.0f}"),
        ("  the same without TCP_NODELAY", f"{r.round_trips_nagle_s:,.0f}"),
        ("task lifecycles/s (b)", f"{r.lifecycles_s:,.2f}"),
        ("ratio (b)/(a)", f"{ratio:.4f}"),
        ("tasks done / wall s", f"{r.done:,} / {r.wall_s:,.1f}"),
        ("hub CPU ms per lifecycle", f"{r.hub_cpu_ms:,.1f}"),
        ("agents' CPU ms per lifecycle", f"{r.agent_cpu_ms:,.1f}"),
        ("offer->done p50 / p99 s", f"{r.p50_s:,.3f} / {r.p99_s:,.3f}"),
        ("offers per lifecycle", f"{r.offers / r.done if r.done else 0:,.2f}"),
        ("hub CPU ms/s idle (before the run)", f"{r.idle_cpu_ms_s:,.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"run: {r.label}", "-" * (width + 16)]
    lines += [f"{k:<{width}}  {v:>12}" for k, v in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--machines", type=int, default=10, help="sim machines per agent")
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--job-size", type=int, default=50, help="tasks per submitted job")
    p.add_argument("--store", help="a PostgreSQL server URL (default: SQLite in the run folder)")
    p.add_argument(
        "--dispatchers",
        type=int,
        default=0,
        help="N dispatcher processes + 1 api (PostgreSQL); 0: one `fabnet hub`",
    )
    p.add_argument("--pings", type=int, default=2000, help="paho pair round trips")
    p.add_argument("--idle", type=float, default=10.0,
                   help="s to measure the hub's CPU with every machine idle first (0: skip)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=0.0, help="s to wait for the tasks (0: auto)")
    p.add_argument("--keep", type=Path, help="run in DIR and keep it (logs, database)")
    args = p.parse_args()
    for name in ("agents", "machines", "tasks", "job_size", "pings"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.dispatchers < 0 or (args.dispatchers and not args.store):
        p.error(
            "--dispatchers N needs N >= 1 and --store postgresql://... (SQLite is one process's)"
        )
    args.timeout = args.timeout or max(300.0, args.tasks * 0.5)
    root = args.keep or Path(tempfile.mkdtemp(prefix="fabnet-bench-dispatch-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"running: {label(args)}; folder {root}", flush=True)
    try:
        print(table(run(args, root)))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
