"""A ``fabnet hub --role dispatcher`` process answers ``/healthz``, ``/readyz`` and ``/metrics`` on
``[http] health_port`` (issue 9): ready while it hears the broker, 503 naming the broker once the
broker is gone; its own figures in ``/metrics``, for operators only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.lifetime import tied_popen
from fabnet.sim.makers import write_network

START_TIMEOUT_S = 90.0


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET, errors included."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@pytest.fixture
def dispatcher(tmp_path: Path, pg_url: str) -> Iterator[tuple[str, str, MosquittoBroker, Path]]:
    """A dispatcher process on a fresh PostgreSQL database and a dynsec Mosquitto: (its health
    base URL, the operator token, the broker, its log)."""
    broker_port = free_port()
    files = write_network(tmp_path, broker_port, (), http_port=free_port(), database_url=pg_url)
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users, accounts="dynsec")
    broker.start()
    health_port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FABNET_HTTP_PUBLIC_URL": "http://127.0.0.1:9",  # where agents would download
        "FABNET_HTTP_HEALTH_PORT": str(health_port),
    }
    log = tmp_path / "dispatcher.log"
    with log.open("ab") as out:
        proc = tied_popen(
            [sys.executable, "-m", "fabnet.cli", "-v", "hub", "--config", str(files.hub_config),
             "--role", "dispatcher"],
            stdout=out, stderr=out, env=env,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{health_port}", files.api_token, broker, log
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        broker.stop()


def readyz(base: str, log: Path) -> tuple[int, dict[str, Any]]:
    status, body = get(f"{base}/readyz")
    if not status:  # not listening (yet): fail at once if the process said why it stopped
        assert "error:" not in log.read_text(errors="replace"), log.read_text()[-3000:]
    return status, json.loads(body) if status else {}


def test_a_dispatcher_answers_ready_then_503_naming_the_broker_once_it_is_killed(
    dispatcher: tuple[str, str, MosquittoBroker, Path],
) -> None:
    base, token, broker, log = dispatcher
    wait_for(lambda: readyz(base, log)[0] == 200, START_TIMEOUT_S, "the dispatcher to be ready")
    status, body = readyz(base, log)
    assert body == {"status": "ready", "down": [], "database": "ok", "broker": "connected"}
    assert f"health and metrics at {base}" in log.read_text(errors="replace")
    assert get(f"{base}/healthz")[0] == 200

    assert get(f"{base}/metrics")[0] == 401  # operators only
    assert get(f"{base}/metrics", "fab_not-the-token")[0] == 401
    status, scraped = get(f"{base}/metrics", token)
    assert status == 200
    text = scraped.decode()
    # this process's own figures (its bus client connected once) beside the store's counts
    assert 'fabnet_bus_connects_total{client="hub-dispatcher"} 1.0' in text, text
    assert "fabnet_tasks{" in text or "# TYPE fabnet_tasks gauge" in text
    assert "fabnet_http_requests_total" in text  # the probes above, timed by route

    broker.kill()
    wait_for(lambda: readyz(base, log)[0] == 503, 30, "/readyz to report the broker down")
    status, body = readyz(base, log)
    assert body["down"] == ["broker"] and body["broker"] == "disconnected", body
    assert get(f"{base}/healthz")[0] == 200  # alive: restarting it brings no broker back
