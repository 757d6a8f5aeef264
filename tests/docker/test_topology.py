"""docker/compose.yaml's topology as plain processes, from the same files: the broker-init
command writes the dynamic-security state, Mosquitto runs docker/mosquitto.conf (port, data
folder, plugin path and user rewritten for this machine), ``fabnet hub --config
docker/hub.toml`` and ``fabnet agent --config docker/agent.toml`` run with the services'
variables (addresses, ports and folders pointed at tmp_path). The compose health checks pass
and the sample agent's machines show up on the hub."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from compose_support import DOCKER, DOT_ENV, bind_mounts, environment, load_compose, service

from fabnet.bus.broker import find_mosquitto, free_port
from fabnet.bus.dynsec import find_plugin
from fabnet.lifetime import tied_popen

CONTAINER_BROKER_DATA = "/var/lib/fabnet-broker"


def wait_for(
    topology: Topology, condition: Callable[[], bool], timeout_s: float, what: str
) -> None:
    """Poll ``condition`` while every process lives; fail naming ``what``, with the logs."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if topology.alive() and condition():
                return
            time.sleep(0.3)
        problem = f"timed out after {timeout_s:g} s"
    except AssertionError as exc:
        problem = str(exc)
    logs = sorted(topology.root.glob("*.log"))
    tails = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)
    raise AssertionError(f"{problem} waiting for {what}{tails}")


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without our FABNET_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABNET_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def broker_conf(broker_dir: Path, port: int) -> Path:
    """docker/mosquitto.conf with only what differs outside the container rewritten."""
    text = (DOCKER / "mosquitto.conf").read_text()
    text, listeners = re.subn(
        r"^listener 1883 0\.0\.0\.0$", f"listener {port} 127.0.0.1", text, flags=re.M
    )
    assert listeners == 1, "docker/mosquitto.conf has no 'listener 1883 0.0.0.0' line"
    text = text.replace("/mosquitto/data/", f"{broker_dir}/")
    text = re.sub(r"^plugin \S+$", f"plugin {find_plugin()}", text, flags=re.M)
    # the container drops to its mosquitto user; here stay whoever runs the test
    text += f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    path = broker_dir.parent / "mosquitto.conf"
    path.write_text(text)
    return path


def http_get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


class Topology:
    """The compose services as child processes of this test (tied to it: a killed test run
    leaves none behind)."""

    def __init__(self, root: Path, stack: ExitStack) -> None:
        self.root, self.stack = root, stack
        self.compose = load_compose()
        self.broker_port, self.http_port = free_port(), free_port()
        self.hub_url = f"http://127.0.0.1:{self.http_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.stack.callback(log.close)
        proc = tied_popen(args, stdout=log, stderr=subprocess.STDOUT, env=clean_env(env))
        self.stack.callback(stop, proc)
        self.procs[name] = proc

    def alive(self) -> bool:
        """Every started process still runs (a dead one fails the wait at once)."""
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"exited: {dead}"
        return True

    def command(self, name: str) -> list[str]:
        """The service's command with its mounted files' container paths made docker/'s."""
        svc = service(self.compose, name)
        mounts = {target: str(DOCKER / source) for source, target, _ in bind_mounts(svc)}
        return [mounts.get(arg, arg) for arg in svc["command"]]

    def init_broker(self) -> Path:
        """broker-init's own command, its volume path pointed at tmp_path."""
        broker_dir = self.root / "broker-data"
        init = service(self.compose, "broker-init")
        command = init["command"][0].replace(CONTAINER_BROKER_DATA, str(broker_dir))
        fabnet = str(Path(sys.executable).parent / "fabnet")
        command = re.sub(r"(^|\|\|\s*)fabnet ", rf"\g<1>{fabnet} ", command)
        env = clean_env(environment(init))
        for _ in range(2):  # the second run must leave the first's state alone
            done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        return broker_dir

    def start_broker(self, broker_dir: Path) -> None:
        conf = broker_conf(broker_dir, self.broker_port)
        self.spawn("broker", [find_mosquitto(), "-c", str(conf)], {})

    def start_hub(self) -> None:
        env = environment(service(self.compose, "hub"))
        env.update(
            FABNET_DATABASE_URL=f"sqlite:///{self.root / 'hub' / 'fabnet.db'}",
            FABNET_BROKER_URL=f"mqtt://127.0.0.1:{self.broker_port}",
            FABNET_HTTP_HOST="127.0.0.1",
            FABNET_HTTP_PORT=str(self.http_port),
            FABNET_HTTP_PUBLIC_URL=self.hub_url,
            FABNET_HUB_DATA_DIR=str(self.root / "hub"),
        )
        self.spawn("hub", [sys.executable, "-m", "fabnet.cli", *self.command("hub")], env)

    def start_agent(self) -> None:
        env = environment(service(self.compose, "agent"))
        env.update(
            FABNET_BROKER_URL=f"mqtt://127.0.0.1:{self.broker_port}",
            FABNET_AGENT_HUB_URL=self.hub_url,
            FABNET_AGENT_DATA_DIR=str(self.root / "agent"),
        )
        self.spawn("agent", [sys.executable, "-m", "fabnet.cli", *self.command("agent")], env)

    def health_check(self, name: str) -> subprocess.CompletedProcess[str]:
        """The service's compose health check, run here against the rewritten port."""
        svc = service(self.compose, name)
        test = svc["healthcheck"]["test"]
        port = {"hub": ("5000", self.http_port), "broker": ("1883", self.broker_port)}[name]
        args = [part.replace(f":{port[0]}", f":{port[1]}") for part in test[1:]]
        args = [re.sub(rf"-p {port[0]}\b", f"-p {port[1]}", part) for part in args]
        if test[0] == "CMD-SHELL":
            args = ["sh", "-c", *args]
        elif args[0] == "python":
            args[0] = sys.executable
        env = clean_env(environment(svc))
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    with ExitStack() as stack:
        yield Topology(tmp_path, stack)


def test_compose_topology_runs_as_processes_from_the_same_files(topology: Topology) -> None:
    t = topology
    t.start_broker(t.init_broker())
    wait_for(t, lambda: t.health_check("broker").returncode == 0, 20, "the broker's health check")
    t.start_hub()
    healthz = f"{t.hub_url}/healthz"
    wait_for(t, lambda: http_get(healthz)[0] == 200, 60, "hub /healthz")
    wait_for(t, lambda: http_get(healthz)[1]["broker"] == "connected", 20, "hub on the broker")
    assert http_get(healthz)[1] == {"status": "ok", "database": "ok", "broker": "connected"}
    assert topology.health_check("hub").returncode == 0
    topology.start_agent()
    machines_url = f"{topology.hub_url}/api/v1/machines"
    wanted = {"sample-maker/mk3s-sim", "sample-maker/ender3-sim"}

    def machines_up() -> bool:
        status, body = http_get(machines_url, DOT_ENV["API_TOKEN"])
        assert status == 200, f"GET /api/v1/machines answered {status}"
        items = body["items"] if isinstance(body, dict) else body
        seen = {m["id"]: m["state"] for m in items}
        return wanted <= set(seen) and all(seen[m] == "idle" for m in wanted)

    wait_for(t, machines_up, 60, "the sample agent's machines on the hub, idle")
