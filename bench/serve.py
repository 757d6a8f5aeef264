"""The hub's HTTP server: werkzeug's threaded development server (what the hub ran before)
against waitress as the hub runs it now (``fabnet.hub.process.HttpServer``), same app, same
store (bench/web.py's: 10,000 machines, 100,000 tasks), same run.

    .venv/bin/python bench/serve.py [--clients 50] [--requests 40] [--rounds 2] [--keep DIR]

Each server runs in a child process of its own; the load comes from another child process
(``--clients`` keep-alive client threads on 127.0.0.1), one route at a time. Per route and
server: p50 and p99 latency (ms) and throughput (requests/s over the route's wall time); per
server: the serving process's resident memory before and after the load, and its peak. Rounds
alternate the servers so that drift on the shared machine hits both alike. Target (issue 8):
waitress's p99 at most werkzeug's, memory unchanged.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import web as web_bench  # bench/web.py: the filled store and its tokens
from werkzeug.serving import make_server

from fabnet.hub.process import HTTP_THREADS, HttpServer

SERVERS = ("werkzeug", "waitress")
ROUTES = (  # label, path, who asks (a bench/web.py user) or None for no token
    ("hello (bare Flask)", "/hello", None),
    ("GET /healthz", "/healthz", None),
    ("GET /api/v1/designs", "/api/v1/designs", "olga"),
    ("GET /api/v1/jobs (requester)", "/api/v1/jobs", "req000"),
    ("GET /api/v1/machines (maker)", "/api/v1/machines", "maker0"),
)


# -- the serving child -------------------------------------------------------------------------


def serve(kind: str, root: Path, threads: int) -> None:
    """Serve bench/web.py's app with ``kind``; print port and tokens; run until SIGTERM."""
    app, store, tokens, _ = web_bench.build(root)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    if kind == "werkzeug":
        server = make_server("127.0.0.1", 0, app, threaded=True)  # as fabnet.hub ran it
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_port
        stop = server.shutdown
    else:
        waitress = HttpServer("127.0.0.1", 0, threads=threads)
        waitress.serve(app)
        port, stop = waitress.port, waitress.stop
    print(json.dumps({"port": port, "tokens": tokens}), flush=True)
    stopping.wait()
    stop()
    store.close()


# -- the load child ----------------------------------------------------------------------------


def drive(port: int, path: str, headers: dict[str, str], clients: int, per_client: int) -> Any:
    """``clients`` threads send ``per_client`` GETs each over keep-alive connections (a
    client reconnects when the server closes); latencies in s, statuses, and the wall time."""
    times: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine: list[tuple[float, int]] = []
        barrier.wait()
        for _ in range(per_client):
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                answer = conn.getresponse()
                answer.read()
                status = answer.status
            except (http.client.HTTPException, OSError):
                conn.close()
                status = 0
            mine.append((time.perf_counter() - t0, status))
        conn.close()
        with lock:
            for took, status in mine:
                times.append(took)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return {"times": times, "statuses": statuses, "wall_s": time.perf_counter() - t0}


def load(port: int, tokens: dict[str, str], clients: int, per_client: int) -> None:
    """Every route in turn, after a short unmeasured warm-up; prints one JSON object."""
    out = {}
    for label, path, who in ROUTES:
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        drive(port, path, headers, clients, 2)
        out[label] = drive(port, path, headers, clients, per_client)
    print(json.dumps(out), flush=True)


# -- the parent: runs both, prints the table ----------------------------------------------------


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of ``pid`` in kB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def one_run(kind: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    me = [sys.executable, __file__]
    server = subprocess.Popen(
        [*me, "--serve", kind, "--root", str(root), "--threads", str(args.threads)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        idle = rss_kb(server.pid)
        driver = subprocess.run(
            [*me, "--load", str(ready["port"]), "--clients", str(args.clients),
             "--requests", str(args.requests)],
            input=json.dumps(ready["tokens"]), capture_output=True, text=True, check=True,
        )  # fmt: skip
        after = rss_kb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    routes = json.loads(driver.stdout)
    return {"routes": routes, "idle_kb": idle["VmRSS"], "after_kb": after["VmRSS"],
            "peak_kb": after["VmHWM"]}  # fmt: skip


def percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """One row per route: each server's p50, p99 and req/s; waitress/werkzeug ratios."""
    print(f"\n{args.clients} clients x {args.requests} requests per route per round, "
          f"{args.rounds} round(s); waitress threads={args.threads}")  # fmt: skip
    print(f"{'route':<30} {'server':<9} {'n':>5} {'status':<12} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'req/s':>7}")  # fmt: skip
    figures: dict[tuple[str, str], tuple[float, float, float]] = {}
    for label, _, _ in ROUTES:
        for kind in SERVERS:
            times = [t for run in runs[kind] for t in run["routes"][label]["times"]]
            wall = sum(run["routes"][label]["wall_s"] for run in runs[kind])
            codes: dict[str, int] = {}
            for run in runs[kind]:
                for code, n in run["routes"][label]["statuses"].items():
                    codes[code] = codes.get(code, 0) + n
            p50, p99, rate = (
                statistics.median(times) * 1000,
                percentile(times, 0.99),
                len(times) / wall,
            )
            figures[label, kind] = (p50, p99, rate)
            status = ",".join(f"{c}x{n}" for c, n in sorted(codes.items()))
            print(f"{label:<30} {kind:<9} {len(times):>5} {status:<12} {p50:>7.1f} {p99:>7.1f} "
                  f"{rate:>7.0f}")  # fmt: skip
    print(f"\n{'waitress / werkzeug':<30} {'p50':>7} {'p99':>7} {'req/s':>7}")
    for label, _, _ in ROUTES:
        w, z = figures[label, "waitress"], figures[label, "werkzeug"]
        print(f"{label:<30} {w[0] / z[0]:>7.2f} {w[1] / z[1]:>7.2f} {w[2] / z[2]:>7.2f}")
    print(f"\n{'serving process RSS (MB)':<30} {'idle':>7} {'loaded':>7} {'peak':>7}")
    for kind in SERVERS:
        mb = [statistics.median(run[k] for run in runs[kind]) / 1024
              for k in ("idle_kb", "after_kb", "peak_kb")]  # fmt: skip
        print(f"{kind:<30} {mb[0]:>7.1f} {mb[1]:>7.1f} {mb[2]:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client per route")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=HTTP_THREADS, help="waitress threads")
    parser.add_argument("--keep", type=Path, help="build the store in DIR and keep it")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on either server
    if args.serve:
        serve(args.serve, args.root, args.threads)
        return
    if args.load:
        load(args.load, json.loads(sys.stdin.read()), args.clients, args.requests)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="fabnet-bench-serve-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        _, store, _, _ = web_bench.build(root)  # fill once; the children reuse the rows
        store.close()
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SERVERS}
        for round_no in range(args.rounds):
            for kind in SERVERS if round_no % 2 == 0 else reversed(SERVERS):
                print(f"round {round_no + 1}: {kind}", flush=True)
                runs[kind].append(one_run(kind, root, args))
        report(runs, args)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
