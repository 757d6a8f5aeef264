"""Many requests at once: the shared network figures are computed once for all of them, and a
design's thumbnail is rendered once however many first requests race for it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fabnet.library.design import load_design
from fabnet.web.dashboard.network import SharedValue
from fabnet.web.thumbnails import Thumbnails

CALLERS = 24


class Slow:
    """A computation that takes ``seconds`` and counts its runs, one at a time or not."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.runs = 0
        self.running = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.running += 1
            self.overlapped |= self.running > 1
            self.runs += 1
            n = self.runs
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        return n


def _at_once(fn: object, n: int = CALLERS) -> list[object]:
    barrier = threading.Barrier(n)

    def call() -> object:
        barrier.wait()
        return fn()  # type: ignore[operator]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_first_value_is_computed_once_for_every_waiting_caller() -> None:
    slow = Slow(0.2)
    shared = SharedValue(slow, max_age_s=60.0)
    assert _at_once(shared.get) == [1] * CALLERS
    assert slow.runs == 1 and shared.computed == 1


def test_a_stale_value_is_served_at_once_while_one_refresh_runs() -> None:
    now = [0.0]
    slow = Slow(0.3)
    shared = SharedValue(slow, max_age_s=1.0, clock=lambda: now[0] + 100.0)
    assert shared.get() == 1
    now[0] += 5.0  # stale
    started = time.monotonic()
    values = _at_once(shared.get)
    assert time.monotonic() - started < 0.25, "callers waited for the refresh"
    assert values == [1] * CALLERS  # the previous value, at once
    deadline = time.monotonic() + 5.0
    while shared.computed < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert shared.get() == 2 and slow.runs == 2 and not slow.overlapped


def test_a_failed_first_computation_is_retried_by_the_next_call() -> None:
    calls = [0]

    def flaky() -> str:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("database went away")
        return "ok"

    shared = SharedValue(flaky, max_age_s=60.0)
    try:
        shared.get()
    except RuntimeError:
        pass
    else:
        raise AssertionError("the first failure did not reach its caller")
    assert shared.get() == "ok" and calls[0] == 2


def test_racing_first_requests_render_a_thumbnail_once(tmp_path: Path) -> None:
    design = load_design("cube-xyz-20mm")
    thumbnails = Thumbnails(tmp_path / "cache")
    svgs = _at_once(lambda: thumbnails.svg(design))
    assert thumbnails.renders == 1
    assert len(set(svgs)) == 1 and "<path" in str(svgs[0])
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].endswith(".svg"), files  # no temporary file left
    again = Thumbnails(tmp_path / "cache")  # another process: reads the file, renders nothing
    assert _at_once(lambda: again.svg(design), 8) == [svgs[0]] * 8 and again.renders == 0
