"""The hub process serves HTTP with waitress: a free port read back, ``/healthz``, live streams
flushed event by event through a real socket, and a stop that closes open streams."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fabnet.config import load_hub_config
from fabnet.hub.process import HTTP_THREADS, HttpServer, Hub

if TYPE_CHECKING:
    from conftest import BrokerHandle

TOKEN = "fab_" + "7" * 40


def hub_toml(root: Path, broker: BrokerHandle) -> Path:
    path = root / "hub.toml"
    path.write_text(f'''[hub]
id = "hub-{uuid.uuid4().hex[:8]}"
data_dir = "{root / "hub"}"

[broker]
url = "mqtt://{broker.host}:{broker.port}"
username = "{broker.hub_user}"
password = "{broker.users[broker.hub_user]}"
accounts = "none"

[database]
url = "sqlite:///{root / "hub" / "fabnet.db"}"

[http]
api_token = "{TOKEN}"
''')
    return path


@pytest.fixture
def hub(tmp_path: Path, mosquitto: BrokerHandle) -> Iterator[Hub]:
    config = replace(load_hub_config(hub_toml(tmp_path, mosquitto)), http_port=0)
    hub = Hub(config)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_hub_listens_on_the_port_it_picked_and_serves_with_waitress(hub: Hub) -> None:
    assert hub.bus.wait_connected(10)
    assert hub.public_url.startswith("http://127.0.0.1:")
    assert not hub.public_url.endswith(":0")
    status, headers, body = get(f"{hub.public_url}/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "database": "ok", "broker": "connected"}
    assert headers["Server"] == "fabnet"  # waitress's ident; werkzeug says "Werkzeug/..."
    status, _, body = get(f"{hub.public_url}/api/v1/machines", TOKEN)
    assert status == 200, body


def read_until(sock: socket.socket, marker: bytes, seen: bytes = b"") -> bytes:
    """Bytes from ``sock`` until ``marker`` appears in them (a silent server fails the test
    through the socket's timeout, not a measured time)."""
    while marker not in seen:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before {marker!r}; got {seen[-300:]!r}"
        seen += chunk
    return seen


def open_stream(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    request = f"GET /events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def test_live_stream_sends_each_event_as_it_is_produced(hub: Hub) -> None:
    """A stream never ends by itself within the test, so reading two snapshots proves that
    waitress flushes every event rather than buffering the response."""
    sock = open_stream(hub.public_url)
    try:
        head = read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"text/event-stream" in head
        first = read_until(sock, b"data: {", head)
        second = read_until(sock, b"data: {", first[first.index(b"data: {") + 1 :])
        assert b"retry: 1000" in first
        assert b'"machines"' in first + second
    finally:
        sock.close()


def test_open_streams_leave_room_for_requests(hub: Hub) -> None:
    """More live pages than the server has threads: half the threads stream, every page
    beyond is told to come back later (its stream ends at once), and the API still answers
    while the streams run."""
    allowed = HTTP_THREADS // 2
    streams = [open_stream(hub.public_url) for _ in range(allowed)]
    try:
        for sock in streams:
            read_until(sock, b"data: {")
        for _ in range(HTTP_THREADS):  # each one would hold a thread for minutes
            late = open_stream(hub.public_url)
            try:
                told = read_until(late, b"0\r\n\r\n")  # the chunked body ends
            finally:
                late.close()
            assert b"retry: 15000" in told and b"data: {" not in told, told
        status, _, body = get(f"{hub.public_url}/api/v1/machines", TOKEN)
        assert status == 200, body
    finally:
        for sock in streams:
            sock.close()
    # closed pages give their slots back once the server notices (at its next write)
    for _ in range(50):
        reopened = open_stream(hub.public_url)
        try:
            head = read_until(reopened, b"\r\n\r\n")
            told = read_until(reopened, b"\n\n", head[head.index(b"\r\n\r\n") + 4 :])
            if b"retry: 1000\n" in told:  # a slot, not "come back in 15 s"
                break
        finally:
            reopened.close()
        time.sleep(0.2)
    else:
        raise AssertionError("no stream slot came back after the pages closed")


def test_stop_closes_open_streams_and_frees_the_port(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    hub = Hub(replace(load_hub_config(hub_toml(tmp_path, mosquitto)), http_port=0))
    hub.start()
    sock = open_stream(hub.public_url)
    try:
        read_until(sock, b"data: {")
        hub.stop()
        rest = b""
        while chunk := sock.recv(4096):  # EOF once the server closed the stream
            rest += chunk
    finally:
        sock.close()
    port = int(hub.public_url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def hello(environ: object, start_response: object) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [b"hello"]


def test_http_server_answers_only_once_serving_and_stops_without_serving() -> None:
    server = HttpServer("127.0.0.1", 0)
    assert server.port > 0
    server.stop()  # never served: closes the listening socket all the same
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    served = HttpServer("127.0.0.1", 0)
    served.serve(hello)
    try:
        assert get(f"http://127.0.0.1:{served.port}/")[2] == b"hello"
    finally:
        served.stop()
