"""Web latency under load: a SQLite store with 10,000 machines and 100,000 tasks, every API
route and dashboard page (found in the url_map) driven by 50 keep-alive clients, beside a bare
Flask "hello" route measured in the same run.

    .venv/bin/python bench/web.py [--clients 50] [--requests 10] [--keep DIR]
    .venv/bin/python bench/web.py --keep DIR --profile-route /maker   # one page, cProfile

Target: p99 under 50 ms. Prints one row per route: requests, statuses, p50 and p99 (ms), and
both as multiples of the bare hello route's (the machine's floor under the same load). Pages
run as the operator unless labelled (maker ``maker0`` with 10 machines, requester ``req000``);
``/events`` rows time the first snapshot of a new stream.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import logging
import pstats
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event, insert
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from fabnet.core.states import TaskState
from fabnet.errors import NotFound
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.service import HubService
from fabnet.library.design import library_dir
from fabnet.store import Store
from fabnet.store.models import JobRow, LedgerRow, MachineRow, MakerRow, TaskRow
from fabnet.web import create_app
from fabnet.web.app import WebSettings

MAKERS, MACHINES_PER_MAKER = 1_000, 10
JOBS, TASKS_PER_JOB = 10_000, 10
REQUESTERS = 100
CUBE = "cube-xyz-20mm"
PASSWORD = "bench password"
SKIP = re.compile(r"^/(events|static|assets|artifacts)|/layer/|openapi")  # streams and files
USERS = ("olga", "maker0", "req000")  # operator, maker (m0000), requester
TASK_STATES = ["done"] * 60 + ["queued"] * 10 + ["offered"] * 10 + ["running"] * 10
TASK_STATES += ["failed"] * 5 + ["cancelled"] * 5


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class Ids:
    job: str
    task: str
    offered_task: str
    agent: str
    machine: str


def fill(store: Store, design_id: str, now: datetime) -> Ids:
    """Bulk-insert makers, machines, jobs, tasks and ledger rows; returns ids to ask for."""
    rnd = random.Random(7)
    machines: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    makers = [{"id": f"m{i:04d}", "name": f"Maker {i}", "created_at": now} for i in range(MAKERS)]
    machines = []
    for m in makers:
        for k in range(MACHINES_PER_MAKER):
            machines.append(
                {"id": f"{m['id']}/p{k:02d}", "maker_id": m["id"], "name": f"p{k:02d}",
                 "kind": "fdm", "profile": "prusa_mk3s", "driver": "sim", "nozzle_mm": 0.4,
                 "volume_x_mm": 250.0, "volume_y_mm": 210.0, "volume_z_mm": 210.0,
                 "speed_factor": 1.0, "materials": ["PLA"],
                 "policy": {"materials_accepted": [], "max_task_hours": None,
                            "auto_accept": k != 0, "windows": [], "tz": "UTC"},
                 "state": rnd.choice(["idle", "busy", "offline"]), "last_seen": now}
            )  # fmt: skip
    jobs, tasks, ledger = [], [], []
    for j in range(JOBS):
        job_id = f"{j:032x}"
        created = now - timedelta(minutes=JOBS - j)
        jobs.append(
            {"id": job_id, "requester": f"req{j % REQUESTERS:03d}", "design_id": design_id,
             "kind": "fdm", "material": "PLA", "quantity": TASKS_PER_JOB, "part_x_mm": 20.0,
             "part_y_mm": 20.0, "part_z_mm": 20.0, "hours_per_part": 0.5, "quality": "normal",
             "priority": 0, "deadline": None, "parts_per_task": 1, "max_attempts": 3,
             "nozzle_mm": None, "created_at": created}
        )  # fmt: skip
        for t in range(TASKS_PER_JOB):
            state = TASK_STATES[(j * TASKS_PER_JOB + t) % len(TASK_STATES)]
            machine = machines[(j * 7 + t) % len(machines)]["id"] if state != "queued" else None
            if state == "offered":
                machine = machines[((j * 7 + t) // 10) * 10 % len(machines)]["id"]  # ask-first
            task_id = f"{j:016x}{t:016x}"
            tasks.append(
                {"id": task_id, "job_id": job_id, "index": t, "parts": 1, "size_x_mm": 20.0,
                 "size_y_mm": 20.0, "size_z_mm": 20.0, "estimated_hours": 0.5, "kind": "fdm",
                 "material": "PLA", "nozzle_mm": None, "priority": 0, "deadline": None,
                 "state": state, "max_attempts": 3, "offer_no": 0 if machine is None else 1,
                 "machine_id": machine if state in ("offered", "running") else None,
                 "offer_until": now + timedelta(hours=1) if state == "offered" else None,
                 "lease_until": now + timedelta(hours=1) if state == "running" else None,
                 "progress": 1.0 if state == "done" else 0.0, "created_at": created,
                 "updated_at": created}
            )  # fmt: skip
            if state == "done":
                assert machine is not None
                ledger.append(
                    {"task_id": task_id, "job_id": job_id, "maker_id": machine.split("/")[0],
                     "machine_id": machine, "design_id": design_id, "material": "PLA",
                     "grams": 7.5, "machine_hours": 0.5, "parts": 1,
                     "finished_at": now - timedelta(minutes=rnd.randrange(0, 24 * 60))}
                )  # fmt: skip
    with store.db.engine.begin() as conn:
        for table, rows in ((MakerRow, makers), (MachineRow, machines), (JobRow, jobs),
                            (TaskRow, tasks), (LedgerRow, ledger)):  # fmt: skip
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    offered = next(t for t in tasks if t["state"] == "offered")
    return Ids(jobs[0]["id"], tasks[0]["id"], offered["id"], "m0000", "p00")


def kept_ids(store: Store) -> Ids:
    """The ids ``fill`` returns, read back from a store it filled before."""
    offered = store.tasks.find(state=TaskState.OFFERED, limit=1)[0].task_id
    return Ids(f"{0:032x}", f"{0:016x}{0:016x}", offered, "m0000", "p00")


def build(root: Path) -> tuple[Flask, Store, dict[str, str], Ids]:
    now = datetime.now(UTC)
    store = Store(f"sqlite:///{root / 'fabnet.db'}")
    library = root / "library"
    shutil.copytree(library_dir() / CUBE, library / CUBE, dirs_exist_ok=True)
    designs = DesignCatalog(store, library)
    designs.register_library(now)
    if store.catalog.list_makers():  # a kept store from an earlier run: reuse its rows
        ids = kept_ids(store)
    else:
        t0 = time.perf_counter()
        ids = fill(store, designs.resolve(CUBE).design_id, now)
        print(f"filled the store in {time.perf_counter() - t0:.1f} s", flush=True)
    service = HubService(store, designs, cancel_tasks=lambda job_id, reason: None)
    settings = WebSettings(data_dir=root / "hub", library_dir=library)
    app = create_app(
        service, ArtifactStore(root / "artifacts"), "bench-bootstrap", settings=settings
    )

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    tokens = {}
    for name, roles, makers in (
        ("olga", ["operator"], []),
        ("req000", ["requester"], []),
        ("maker0", ["maker"], ["m0000"]),
    ):
        try:
            account = store.accounts.user_named(name)
        except NotFound:
            account = store.accounts.add_user(name, PASSWORD, roles, now, maker_ids=makers)
        tokens[name] = store.accounts.issue_token(account.user_id, "bench", now)[0]
    return app, store, tokens, ids


def session_cookie(port: int, name: str) -> str:
    """Log in as ``name`` through the form; the session cookie for the page routes."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    answer = conn.getresponse()
    page = answer.read().decode()
    cookie = answer.getheader("Set-Cookie", "").split(";")[0]
    token = re.search(r"name=[\"']?csrf_token[\"']? value=[\"']([^\"']+)", page)
    assert token, "no csrf_token in the log-in page"
    form = f"name={name}&password={PASSWORD.replace(' ', '+')}&csrf_token={token.group(1)}"
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/login", body=form, headers=headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 302, f"log-in failed: {answer.status}"
    return answer.getheader("Set-Cookie", "").split(";")[0]


def targets(app: Flask, ids: Ids) -> list[tuple[str, str, str, Any]]:
    """(label, method, path, json body) for every route we can fill in."""
    values = {"job_id": ids.job, "task_id": ids.task, "agent": ids.agent, "machine": ids.machine,
              "ref": CUBE, "slug": CUBE}  # fmt: skip
    out: list[tuple[str, str, str, Any]] = [("hello (bare Flask)", "GET", "/hello", None)]
    pages: list[tuple[str, str, str, Any]] = []  # measured last: the slowest may linger
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if SKIP.search(rule.rule) or "GET" not in (rule.methods or ()) or rule.rule == "/hello":
            continue
        if any(arg not in values for arg in rule.arguments):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+:)?{arg}>", values[arg], path)
        (out if rule.rule.startswith("/api/") else pages).append(
            (f"GET {rule.rule}", "GET", path, None)
        )
    out += [
        ("GET /api/v1/jobs (requester)", "GET", "/api/v1/jobs?as=req000", None),
        ("GET /api/v1/jobs?offset=5000", "GET", "/api/v1/jobs?offset=5000", None),
        ("GET /api/v1/machines?offset=9000", "GET", "/api/v1/machines?offset=9000", None),
        ("GET /api/v1/offers (maker)", "GET", "/api/v1/offers?as=maker0", None),
        ("GET /api/v1/ledger/series?by=maker", "GET", "/api/v1/ledger/series?by=maker", None),
        ("POST /api/v1/jobs", "POST", "/api/v1/jobs?as=req000",
         {"design": CUBE, "quantity": 2, "material": "PLA"}),
        ("PUT /api/v1/machines/<agent>/<machine>", "PUT", f"/api/v1/machines/{ids.agent}/{ids.machine}",
         {"materials": ["PETG"]}),
    ]  # fmt: skip
    pages += [
        ("GET /maker (maker, 10 machines)", "GET", "/maker?as=maker0", None),
        ("GET /jobs (requester)", "GET", "/jobs?as=req000", None),
        ("GET /jobs?page=150", "GET", "/jobs?page=150", None),
        ("GET /events?view=overview (1st snapshot)", "GET", "/events?view=overview", None),
        ("GET /events?view=maker (maker, 1st snapshot)", "GET", "/events?view=maker&as=maker0",
         None),
        ("GET /events?job= (requester, 1st snapshot)", "GET", f"/events?job={ids.job}&as=req000",
         None),
    ]  # fmt: skip
    return out + pages


def drive(port: int, target: tuple[str, str, str, Any], headers: dict[str, str],
          clients: int, per_client: int, budget_s: float) -> tuple[list[float], dict[int, int]]:  # fmt: skip
    """Every client sends ``per_client`` requests (fewer once ``budget_s`` is spent);
    status 0 counts a broken connection."""
    _, method, path, body = target
    times: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine: list[float] = []
        codes: list[int] = []
        payload = json.dumps(body) if body is not None else None
        start.wait()
        deadline = time.perf_counter() + budget_s
        for i in range(per_client):
            if i and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=headers)
                answer = conn.getresponse()
                status = answer.status
                if path.startswith("/events") and status == 200:
                    first_snapshot(answer)
                    conn.close()  # the stream goes on: drop it, as a browser leaving the page
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                else:
                    answer.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status = 0
            mine.append(time.perf_counter() - t0)
            codes.append(status)
        conn.close()
        with lock:
            times.extend(mine)
            for c in codes:
                statuses[c] = statuses.get(c, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, statuses


def first_snapshot(answer: http.client.HTTPResponse) -> None:
    """Read a server-sent event stream up to its first ``data:`` line."""
    while True:
        line = answer.fp.readline()
        if not line:
            raise http.client.IncompleteRead(b"")
        if line.startswith(b"data: "):
            return


def headers_for(
    path: str, tokens: dict[str, str], cookies: dict[str, str]
) -> tuple[str, dict[str, str]]:
    who = re.search(r"[?&]as=(\w+)", path)
    clean = re.sub(r"[?&]as=\w+", "", path)
    if "?" not in clean and "&" in clean:
        clean = clean.replace("&", "?", 1)
    if clean.startswith("/api/"):
        name = who.group(1) if who else "olga"
        return clean, {
            "Authorization": f"Bearer {tokens[name]}",
            "Content-Type": "application/json",
        }
    return clean, {"Cookie": cookies[who.group(1) if who else "olga"]}


def profile_route(app: Flask, store: Store, path: str, repeat: int, user: str) -> None:
    """Request ``path`` ``repeat`` times in-process as ``user`` under cProfile: time per
    request, SQL statements per request, and the 25 costliest functions (own time)."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no csrf_token in the log-in page"
    form = {"name": user, "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=form).status_code == 302, "log-in failed"
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(store.db.engine, "before_cursor_execute", count)
    client.get(path)  # warm caches (templates, the shared snapshot)
    statements[0] = 0
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(repeat):
        answer = client.get(path, buffered=not path.startswith("/events"))
        if path.startswith("/events"):
            next(iter(answer.response))
            next(iter(answer.response))
        status = answer.status_code
        answer.close()
    profiler.disable()
    elapsed = (time.perf_counter() - t0) / repeat
    event.remove(store.db.engine, "before_cursor_execute", count)
    print(f"{path}: status {status}, {elapsed * 1000:.1f} ms and "
          f"{statements[0] / repeat:.1f} SQL statements per request")  # fmt: skip
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10, help="per client per route")
    parser.add_argument("--keep", type=Path, help="build the store in DIR and keep it")
    parser.add_argument("--only", default="", help="measure only routes matching this regex")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per route at most")
    parser.add_argument(
        "--profile-route",
        metavar="PATH",
        help="profile one page in-process instead (as --profile-as)",
    )
    parser.add_argument("--profile-repeat", type=int, default=5)
    parser.add_argument("--profile-as", default="olga", choices=USERS, help="who asks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = args.keep or Path(tempfile.mkdtemp(prefix="fabnet-bench-web-"))
    root.mkdir(parents=True, exist_ok=True)
    app, store, tokens, ids = build(root)
    if args.profile_route:
        profile_route(app, store, args.profile_route, args.profile_repeat, args.profile_as)
        store.close()
        return
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=KeepAliveHandler
    )
    server.request_queue_size = 256
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    cookies = {name: session_cookie(port, name) for name in USERS}
    print(f"{args.clients} clients x {args.requests} requests per route; werkzeug threaded")
    print(f"{'route':<52} {'n':>5} {'status':<16} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p50/hello':>9} {'p99/hello':>9}")  # fmt: skip
    hello = (1.0, 1.0)
    try:
        for target in targets(app, ids):
            if args.only and not re.search(args.only, target[0]) and "hello" not in target[0]:
                continue
            path, headers = headers_for(target[2], tokens, cookies)
            times, statuses = drive(port, (target[0], target[1], path, target[3]), headers,
                                    args.clients, args.requests, args.budget)  # fmt: skip
            times.sort()
            p50 = statistics.median(times) * 1000
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
            if target[0].startswith("hello"):
                hello = (p50, p99)
            codes = ",".join(f"{c}x{n}" for c, n in sorted(statuses.items()))
            print(f"{target[0]:<52} {len(times):>5} {codes:<16} {p50:>8.1f} {p99:>8.1f} "
                  f"{p50 / hello[0]:>9.1f} {p99 / hello[1]:>9.1f}", flush=True)  # fmt: skip
    finally:
        time.sleep(2.0)  # let the streams the clients dropped reach their next write and end
        server.shutdown()
        store.close()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
