"""Artifact download and verification over real HTTP; the journal on a real file."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_harness import new_id

from fabnet.agent.artifacts import ArtifactRef, FetchSettings, fetch_artifact
from fabnet.agent.journal import Journal
from fabnet.bus import topics
from fabnet.bus.messages import TaskCompleted, TaskFailed
from fabnet.errors import DeviceError, InvalidInput

BODY = b"G28\nG1 X10 Y10 F3000\n" * 1000
SHA = hashlib.sha256(BODY).hexdigest()
TOKEN = "token-0123456789abcdef"
FAST = FetchSettings(timeout_s=2, attempts=3, backoff_s=0.05)


class FlakyServer:
    """Answers 503 to the first ``failures`` requests, then the body; counts requests."""

    def __init__(self, failures: int) -> None:
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.count += 1
                if outer.count <= failures:
                    self.send_error(503)
                    return
                if self.headers.get("X-Fabnet-Token") != TOKEN:
                    self.send_error(403)
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(BODY)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer(failures=2)
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_retries_server_errors_then_verifies(flaky: FlakyServer, tmp_path: Path) -> None:
    ref = ArtifactRef(f"{flaky.url}/a", TOKEN, len(BODY), SHA)
    path = fetch_artifact(ref, tmp_path / "a.gcode", "http://localhost:5000", FAST)
    assert path.read_bytes() == BODY and flaky.count == 3


@pytest.mark.parametrize(
    ("size", "sha", "message"),
    [
        (len(BODY), "0" * 64, "artifact sha256 mismatch"),
        (len(BODY) + 1, SHA, "artifact size mismatch: expected"),
        (len(BODY) - 1, SHA, "artifact size mismatch: more than"),
    ],
)
def test_mismatch_leaves_no_file(
    flaky: FlakyServer, tmp_path: Path, size: int, sha: str, message: str
) -> None:
    flaky.count = 2
    with pytest.raises(InvalidInput, match=message):
        fetch_artifact(
            ArtifactRef(f"{flaky.url}/a", TOKEN, size, sha), tmp_path / "a", flaky.url, FAST
        )
    assert list(tmp_path.iterdir()) == []


def test_refusal_is_not_retried_and_foreign_hosts_are_not_fetched(
    flaky: FlakyServer, tmp_path: Path
) -> None:
    flaky.count = 2
    with pytest.raises(DeviceError, match="HTTP 403"):
        fetch_artifact(ArtifactRef(f"{flaky.url}/a", "x" * 16, len(BODY), SHA), tmp_path / "a",
                       flaky.url, FAST)  # fmt: skip
    assert flaky.count == 3
    with pytest.raises(InvalidInput, match="not the hub's"):
        fetch_artifact(ArtifactRef(f"{flaky.url}/a", TOKEN, len(BODY), SHA), tmp_path / "a",
                       "http://hub.example.org:5000", FAST)  # fmt: skip
    assert flaky.count == 3


def test_unreachable_hub_fails_after_the_attempts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeviceError, match="download failed"):
        fetch_artifact(ArtifactRef(f"http://127.0.0.1:{port}/a", TOKEN, 1, SHA), tmp_path / "a",
                       "http://127.0.0.1", FAST)  # fmt: skip


def test_journal_keeps_unconfirmed_events_across_reopen_and_skips_a_torn_line(
    tmp_path: Path,
) -> None:
    topic = topics.machine_events("alice", "m")
    done = TaskCompleted(machine="m", task_id=new_id(), attempt=1, grams=1.5, machine_s=9.0,
                         sha256="cd" * 32)  # fmt: skip
    failed = TaskFailed(machine="m", task_id=new_id(), attempt=2, reason="x", raw="Error:y")
    journal = Journal(tmp_path / "j.jsonl")
    journal.record(topic, done)
    journal.record(topic, failed)
    journal.confirm(done.id)
    with open(tmp_path / "j.jsonl", "a") as handle:
        handle.write('{"op": "event", "topic": "fabn')  # the process died mid-write
    reopened = Journal(tmp_path / "j.jsonl")
    assert [(e.topic, e.message) for e in reopened.pending()] == [(topic, failed)]
    reopened.confirm(failed.id)
    assert Journal(tmp_path / "j.jsonl").pending() == []
    assert (tmp_path / "j.jsonl").read_text() == ""
