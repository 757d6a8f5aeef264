"""The hub's side of the agent tests: a real hub-user ``BusClient`` that records what agents
publish and sends commands, a tiny HTTP server for artifacts, and agent.toml writing."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.messages import (
    MOVING_EVENTS,
    EventsAck,
    MachineCommand,
    Message,
    TaskAssign,
    TaskCommand,
    TaskOffer,
)
from fabnet.bus.topics import Topic

DATA = Path(__file__).resolve().parent.parent / "data"
CUBE_GCODE = DATA / "gcode" / "cube_xyz_20mm_prusaslicer.gcode.gz"
TOKEN = "tok-" + "a1b2c3d4e5f6a7b8"

M = TypeVar("M", bound=Message)


def cube_gcode() -> bytes:
    """A real PrusaSlicer G-code of a 20 mm cube for the prusa_mk3s (about 21 min, 3.9 g)."""
    with gzip.open(CUBE_GCODE, "rb") as handle:
        return handle.read()


def new_id() -> str:
    return uuid.uuid4().hex


class ArtifactServer:
    """Serves registered files at ``/artifacts/<name>`` to requests bearing the token."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        files, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                requests.append(self.path)
                name = self.path.removeprefix("/artifacts/")
                if self.headers.get("X-Fabnet-Token") != TOKEN:
                    self.send_error(403, "bad token")
                    return
                body = files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, name: str, body: bytes) -> str:
        """Serve ``body`` as ``name``; returns its URL."""
        self.files[name] = body
        return f"{self.base_url}/artifacts/{name}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HubPeer:
    """Plays the hub: records every status and event of one agent, sends it commands, and
    acknowledges each task event as the hub does after its commit (``events.ack``) unless
    ``auto_ack`` is False."""

    def __init__(self, settings: BusSettings, agent_id: str, auto_ack: bool = True) -> None:
        self.agent_id = agent_id
        self.auto_ack = auto_ack
        self.received: list[tuple[Topic, Message]] = []
        self._cond = threading.Condition()
        self.bus = BusClient(settings)
        base = f"{topics.PREFIX}/agents/{agent_id}"
        for leaf in ("status", "machines/+/status", "machines/+/events", "machines/+/telemetry"):
            self.bus.subscribe(f"{base}/{leaf}", self._on_message)

    def _on_message(self, topic: Topic, msg: Message) -> None:
        with self._cond:
            self.received.append((topic, msg))
            self._cond.notify_all()
        if self.auto_ack and isinstance(msg, MOVING_EVENTS):
            self.ack(msg.id, wait=False)

    def ack(self, *ids: str, wait: bool = True) -> None:
        """Send the agent an ``events.ack`` naming ``ids``."""
        sent = self.bus.publish(topics.agent_commands(self.agent_id), EventsAck(ids=ids))
        if wait:
            sent.wait(5)

    def start(self) -> None:
        self.bus.start()
        assert self.bus.wait_connected(10), self.bus.last_error

    def stop(self) -> None:
        self.bus.stop()

    def send(self, command: TaskCommand | MachineCommand) -> None:
        self.bus.publish(topics.agent_commands(self.agent_id), command).wait(5)

    def messages(self, kind: type[M], **match: Any) -> list[M]:
        with self._cond:
            return [
                m
                for _, m in self.received
                if isinstance(m, kind) and all(getattr(m, k) == v for k, v in match.items())
            ]

    def wait_for(
        self,
        kind: type[M],
        timeout_s: float = 10.0,
        where: Callable[[M], bool] | None = None,
        **match: Any,
    ) -> M:
        """The first ``kind`` message with fields equal to ``match`` (and ``where``)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for m in self.messages(kind, **match):
                    if where is None or where(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{m.TYPE} {getattr(m, 'state', '')}" for _, m in self.received[-15:]]
                    raise AssertionError(
                        f"no {kind.__name__} {match} within {timeout_s} s; last: {seen}"
                    )
                self._cond.wait(left)


@contextmanager
def hub_peer(settings: BusSettings, agent_id: str) -> Iterator[HubPeer]:
    peer = HubPeer(settings, agent_id)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def offer(machine: str, task_id: str, material: str = "PLA", est_s: float = 1800.0) -> TaskOffer:
    return TaskOffer(
        machine=machine,
        task_id=task_id,
        attempt=1,
        design_id="cube",
        design_name="XYZ cube 20 mm",
        material=material,
        est_grams=3.9,
        est_machine_s=est_s,
    )


def assign(
    machine: str, task_id: str, url: str, body: bytes, sha256: str | None = None
) -> TaskAssign:
    return TaskAssign(
        machine=machine,
        task_id=task_id,
        attempt=1,
        url=url,
        token=TOKEN,
        size_bytes=len(body),
        sha256=sha256 or hashlib.sha256(body).hexdigest(),
        profile="prusa_mk3s",
    )


def machine_toml(
    machine_id: str,
    *,
    material: str = "PLA",
    materials: tuple[str, ...] = ("PLA", "PETG"),
    max_hours: float = 8,
    auto_accept: bool = True,
    windows: tuple[str, ...] = (),
    speed: float = 1000.0,
    profile: str = "prusa_mk3s",
) -> str:
    quoted = ", ".join(f'"{m}"' for m in materials)
    wins = ", ".join(f'"{w}"' for w in windows)
    return f"""
[[machines]]
id = "{machine_id}"
profile = "{profile}"
driver = "sim"
material = "{material}"
[machines.policy]
materials = [{quoted}]
max_task_hours = {max_hours}
auto_accept = {"true" if auto_accept else "false"}
windows = [{wins}]
[machines.driver_options]
speed = {speed}
min_duration_s = 0.3
"""


def write_agent_toml(
    path: Path, agent_id: str, password: str, port: int, hub_url: str, data_dir: Path, machines: str
) -> Path:
    path.write_text(
        f"""
[agent]
id = "{agent_id}"
hub_url = "{hub_url}"
data_dir = "{data_dir}"
[broker]
url = "mqtt://127.0.0.1:{port}"
password = "{password}"
{machines}"""
    )
    return path
