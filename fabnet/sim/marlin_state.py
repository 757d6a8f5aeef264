"""The simulated printer's state as a small JSON file, for whoever watches from outside the
process (``fabnet sim marlin --state-file PATH``): a test that SIGTERMs an agent reads it to see
that the heaters ended at 0 and how many files ran to their end.

The file is replaced atomically (write a temporary file, then ``os.replace``), at most
``MAX_WRITES_S`` times a second while something changes, and at once when the simulator
``poke``s it (a heater target changed, a file ended). Fields are listed in
``fabnet.sim.marlin``'s module docstring.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_WRITES_S = 4.0


class StateFile:
    """Keeps ``path`` equal to ``snapshot()`` from a thread of its own."""

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path)
        self._snapshot = snapshot
        self._poked = threading.Event()
        self._closing = threading.Event()
        self._last: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="marlin-sim-state", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(self._snapshot())
        self._thread.start()

    def poke(self) -> None:
        """Something a watcher waits for changed: write it now rather than at the next tick."""
        self._poked.set()

    def close(self) -> None:
        """Stop the thread and write the final state."""
        self._closing.set()
        self._poked.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._write(self._snapshot())

    def _run(self) -> None:
        pause_s = 1.0 / MAX_WRITES_S
        while not self._closing.is_set():
            started = time.monotonic()
            self._poked.wait(pause_s)
            self._poked.clear()
            try:
                self._write(self._snapshot(), only_changes=True)
            except OSError as exc:  # a full disk must not end the simulator
                log.warning("marlin sim: cannot write %s: %s", self.path, exc)
            # a stream of pokes still writes at most MAX_WRITES_S times a second
            self._closing.wait(max(0.0, 0.05 - (time.monotonic() - started)))

    def _write(self, state: dict[str, Any], only_changes: bool = False) -> None:
        comparable = {k: v for k, v in state.items() if k != "updated_at"}
        if only_changes and comparable == self._last:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._last = comparable


def read_state(path: Path) -> dict[str, Any]:
    """The last state written to ``path`` (a watcher's helper); FileNotFoundError if none yet."""
    state: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return state
