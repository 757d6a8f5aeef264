"""The network-wide figures of the operator overview and the live stream, computed at most once
per ``MAX_AGE_S`` by one thread and shared by every request and stream (single-flight)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from markupsafe import Markup

from fabnet.core.tasks import TaskSnapshot
from fabnet.store.overview import OverviewReads, Production
from fabnet.web.charts import WallTile, area_chart, bar_chart, machine_wall
from fabnet.web.dashboard import snapshot as snap

log = logging.getLogger(__name__)

MAX_AGE_S = 1.0  # figures older than this are recomputed on the next request
WALL_SHOWN = 200  # machines on the wall; the rest are counted
STUCK_SHOWN = 20

T = TypeVar("T")


class SharedValue(Generic[T]):
    """A value computed by ``compute`` at most once per ``max_age_s``, thread-safe.

    Single flight: only one computation runs at a time. Before the first value exists callers
    wait for it (an exception reaches the caller that ran ``compute``; the next call tries
    again). Afterwards a caller finding the value stale starts one background refresh and,
    like everyone meanwhile, gets the previous value at once: no request pays for a refresh.
    """

    def __init__(
        self,
        compute: Callable[[], T],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._max_age_s = max_age_s
        self._clock = clock
        self._cond = threading.Condition()
        self._value: T | None = None
        self._at = 0.0
        self._busy = False
        self.computed = 0  # how many times ``compute`` ran to the end (for tests and logs)

    def get(self) -> T:
        """The current value: at most ``max_age_s`` old, plus one refresh's time."""
        with self._cond:
            while self._value is None and self._busy:
                self._cond.wait()
            value, stale = self._value, self._clock() - self._at >= self._max_age_s
            start = stale and not self._busy
            if start:
                self._busy = True
        if value is not None:
            if start:
                threading.Thread(target=self._refresh, name="shared-refresh", daemon=True).start()
            return value
        if not start:  # another caller's first computation failed meanwhile: try again
            return self.get()
        fresh = self._run()
        assert fresh is not None, "compute failed"  # _run re-raises; this is for mypy
        return fresh

    def _run(self) -> T | None:
        """Compute once; store the value, clear ``busy`` and wake waiters whatever happens."""
        value: T | None = None
        try:
            value = self._compute()
        finally:
            with self._cond:
                if value is not None:
                    self._value, self._at = value, self._clock()
                    self.computed += 1
                self._busy = False
                self._cond.notify_all()
        return value

    def _refresh(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - top of the refresh thread: keep the old value
            log.exception("refreshing the shared figures failed; keeping the previous ones")


@dataclass(frozen=True)
class NetworkFigures:
    """One snapshot of the network: JSON-ready ``data`` for the stream (counts, totals,
    charts as SVG text), the stuck tasks with their attempts for the overview page, and the
    production sums behind the charts."""

    at: datetime
    data: dict[str, Any]
    stuck: list[TaskSnapshot]
    production: Production


def network_figures(reads: OverviewReads, now: datetime) -> NetworkFigures:
    """Compute the figures: a dozen bounded SQL statements whatever the network's size."""
    counts = {state.value: n for state, n in reads.task_counts().items()}
    prod = reads.production(now, snap.SERIES_WINDOW, snap.SERIES_BUCKET)
    wall = reads.wall(WALL_SHOWN)
    tiles = [WallTile(m.machine_id, m.state, m.kind, m.task_id, m.progress) for m in wall.machines]
    data = {
        "t": now.isoformat(),
        "counts": counts,
        "queue": counts["queued"] + counts["offered"],
        "machine_counts": reads.machine_counts(),
        "totals": snap.totals_json(prod.total),
        "today": snap.totals_json(prod.today),
        "charts": {
            "production": str(area_chart(prod.points, title="Grams by material", unit="g")),
            "wall": str(machine_wall(tiles, total=wall.total)),
            "materials": str(materials_chart(prod)),
        },
    }
    return NetworkFigures(now, data, reads.stuck(now, STUCK_SHOWN), prod)


def materials_chart(prod: Production) -> Markup:
    """Parts done per material, most grams first."""
    ordered = sorted(prod.by_material.items(), key=lambda kv: -kv[1].grams)
    return bar_chart(
        [(k, float(t.parts)) for k, t in ordered], unit="parts", title="Parts by material"
    )


def shared_network(reads: OverviewReads) -> SharedValue[NetworkFigures]:
    """The shared, once-per-second network figures read through ``reads``."""
    return SharedValue(lambda: network_figures(reads, snap.now_utc()), MAX_AGE_S)
