"""Two real hubs for the federation process test: each a ``fabnet hub`` process started from
the hub.toml ``fabnet init hub`` wrote (edited as an operator would), with its own Mosquitto,
database and ``fabnet agent`` processes driving simulated machines; between them a loopback
TCP proxy per direction (the link) that the test can cut and restore.

Everything runs as ``python -m fabnet.cli`` of this checkout, in folders under the test's
``tmp_path`` (never the checkout); each process's output goes to a log file for the failure
message.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.sim.makers import SimMaker, write_network

CHECKOUT = Path(__file__).resolve().parents[2]
LOG_TAIL_CHARS = 6000


class Proc:
    """One ``python -m fabnet.cli ...`` process, its output kept in ``log``."""

    def __init__(self, name: str, args: list[str], cwd: Path, log: Path) -> None:
        assert not cwd.resolve().is_relative_to(CHECKOUT), f"{cwd} is inside the checkout"
        self.name, self.log = name, log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fabnet.cli", "-v", *args],
                cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return f"--- {self.name} ({self.log}) ---\n{text[-LOG_TAIL_CHARS:]}"

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is cleaned up."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def end(self) -> None:
        """SIGTERM, then SIGKILL of its whole session after a grace period."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def fabnet(args: list[str], cwd: Path) -> str:
    """Run a short ``fabnet`` command to its end; its stdout (fails with its output)."""
    done = subprocess.run([sys.executable, "-m", "fabnet.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, f"fabnet {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def set_keys(text: str, table: str, values: Mapping[str, Any]) -> str:
    """What an operator does in an editor: set ``key = value`` in ``[table]`` of the file
    ``fabnet init`` wrote (the line replaced, its comment dropped; absent keys appended)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == f"[{table}]"), None)
    assert start is not None, f"no [{table}] in the file fabnet init wrote"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
               len(lines))  # fmt: skip
    body = lines[start + 1 : end]
    for key, value in values.items():
        setting = f"{key} = {json.dumps(value)}"
        at = next((i for i, ln in enumerate(body) if re.match(rf"{key}\s*=", ln)), None)
        if at is None:
            body.append(setting)
        else:
            body[at] = setting
    return "\n".join([*lines[: start + 1], *body, *lines[end:]]) + "\n"


class LinkProxy:
    """A loopback TCP proxy to ``target_port`` on a port of its own: ``cut()`` closes the
    listener and every open connection (a peer then gets "connection refused" at once),
    ``restore()`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for sock in [*conns, *([listener] if listener else [])]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(frozen=True)
class Timings:
    """Short federation and hub timings for the test (``[federation]`` and ``[hub]`` keys)."""

    federation: Mapping[str, float] = field(default_factory=lambda: {
        "tick_s": 1, "advertise_every_s": 2, "capacity_max_age_s": 30, "peer_lease_s": 20,
        "overflow_after_s": 2, "transfer_timeout_s": 10})  # fmt: skip
    hub: Mapping[str, float] = field(default_factory=lambda: {
        "lease_s": 10, "offer_timeout_s": 5, "sweep_interval_s": 0.5})  # fmt: skip
    sim_speed: float = 400.0


@dataclass
class Site:
    """One hub of the pair: its folder, config, broker, hub process and agents."""

    name: str
    folder: Path
    config: Path
    http_port: int
    broker: MosquittoBroker
    operator_token: str
    agent_configs: dict[str, Path]
    hub: Proc | None = None
    agents: dict[str, Proc] = field(default_factory=dict)
    hub_starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_hub(self, timeout_s: float = 30) -> None:
        self.hub_starts += 1
        log = self.folder / f"hub-{self.hub_starts}.log"
        self.hub = Proc(f"hub {self.name}", ["hub", "--config", str(self.config)], self.folder,
                        log)  # fmt: skip
        until(lambda: _healthy(self.url) or not self.hub_running(), timeout_s,
              f"hub {self.name} to answer /healthz", self.output)  # fmt: skip
        assert self.hub_running(), f"hub {self.name} exited\n{self.output()}"

    def hub_running(self) -> bool:
        return self.hub is not None and self.hub.running

    def kill_hub(self) -> None:
        assert self.hub is not None
        self.hub.kill()

    def start_agents(self) -> None:
        for agent_id, path in self.agent_configs.items():
            log = self.folder / f"agent-{agent_id}.log"
            args = ["agent", "--config", str(path)]
            self.agents[agent_id] = Proc(f"agent {agent_id}@{self.name}", args, self.folder, log)

    def cli(self, *args: str, token: str | None = None) -> str:
        """A ``fabnet`` command against this hub (``--hub``/``--token`` added)."""
        auth = ["--hub", self.url, "--token", token or self.operator_token]
        return fabnet([*args, *auth], self.folder)

    def api(self, method: str, path: str, token: str | None = None,
            body: dict[str, Any] | None = None) -> Any:  # fmt: skip
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token or self.operator_token}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def output(self) -> str:
        procs = [self.hub, *self.agents.values()]
        logs = [p.output() for p in procs if p is not None]
        return "\n".join([*logs, f"--- broker {self.name} ---", _tail(self.broker.log_file)])

    def stop(self) -> None:
        for proc in [*self.agents.values(), self.hub]:
            if proc is not None:
                proc.end()
        self.broker.stop()


def make_site(root: Path, name: str, makers: tuple[SimMaker, ...], *, database_url: str | None,
              timings: Timings) -> Site:  # fmt: skip
    """Write hub ``name``'s files under ``root/name`` and start its broker (not the hub):
    ``fabnet init hub`` then the operator's edits (ports, id, accounts kept by the broker's
    own files, short timings, a ``[federation]`` table); agent configs for ``makers``."""
    folder = root / name
    folder.mkdir(parents=True)
    fabnet(["init", "hub", "-o", "hub.toml"], folder)
    config = folder / "hub.toml"
    text = config.read_text()
    broker_port, http_port = free_port(), free_port()
    text = set_keys(text, "hub", {"id": name, **timings.hub})
    text = set_keys(text, "broker", {"url": f"mqtt://127.0.0.1:{broker_port}", "accounts": "none"})
    text = set_keys(text, "http", {"port": http_port})
    if database_url is not None:
        text = set_keys(text, "database", {"url": database_url})
    text += "\n[federation]\n" + "".join(f"{k} = {v}\n" for k, v in timings.federation.items())
    config.write_text(text)
    settings = tomllib.loads(text)
    makers_files = write_network(folder / "makers", broker_port, makers, speed=timings.sim_speed)
    users = {**makers_files.users, "hub": settings["broker"]["password"]}
    broker = MosquittoBroker(folder / "broker", broker_port, users=users)
    broker.start()
    return Site(name, folder, config, http_port, broker, settings["http"]["api_token"],
                makers_files.agent_configs)  # fmt: skip


def peer_key(site: Site) -> str:
    """``fabnet peers key``: the hub's public key, as its operator hands it out."""
    out = fabnet(["peers", "key", "--config", str(site.config)], site.folder)
    return next(ln.split()[1] for ln in out.splitlines() if ln.startswith("key "))


def requester_token(site: Site, name: str) -> str:
    """A requester account at ``site`` and a token for it (``fabnet users add|token``)."""
    config = str(site.config)
    fabnet(["users", "add", name, "--role", "requester", "--password",
            "a long pass phrase for the test", "--config", config], site.folder)  # fmt: skip
    out = fabnet(["users", "token", name, "--config", config], site.folder)
    return out.strip().splitlines()[-1].strip()


def until(check: Callable[[], Any], timeout_s: float, what: str,
          logs: Callable[[], str] = lambda: "") -> Any:  # fmt: skip
    """Poll ``check`` until it returns something true; fail naming ``what``, with ``logs``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: not so after {timeout_s:g} s (last: {last!r})\n{logs()}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except FileNotFoundError:
        return ""
