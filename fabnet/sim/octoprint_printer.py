"""The printer behind the fake OctoPrint server: OctoPrint's state texts over a time-scaled print.

Thread-safe; every read advances the timed transitions (Pausing -> Paused, Printing ->
Finishing -> Operational, Cancelling -> Operational). Times are real seconds unless named
``sim``; reported print times are simulated seconds (real seconds x speed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

MOVE_S = 0.5  # simulated seconds one G0/G1/G2/G3 line takes
TRANSITION_S = 0.1  # real seconds spent in Pausing, Resuming, Cancelling, Finishing
OPERATIONAL = frozenset({"Operational", "Printing", "Pausing", "Paused", "Resuming", "Cancelling",
                         "Finishing"})  # fmt: skip
ACTIVE_JOB = frozenset({"Printing", "Pausing", "Paused", "Resuming", "Finishing"})


@dataclass
class StoredFile:
    name: str
    data: bytes
    date: int

    @property
    def duration_sim_s(self) -> float:
        moves = sum(
            1
            for line in self.data.decode("utf-8", errors="replace").splitlines()
            if line.strip().upper().startswith(("G0", "G1", "G2", "G3"))
        )
        return max(1.0, moves * MOVE_S)


class FakePrinter:
    """One printer as OctoPrint sees it. ``events`` records commands in order, for tests."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self.files: dict[str, StoredFile] = {}
        self.events: list[str] = []
        self._lock = threading.RLock()
        self._state = "Operational"
        self._error: str | None = None
        self._selected: StoredFile | None = None
        self._elapsed_s = 0.0  # real seconds printed before the current run segment
        self._run_from: float | None = None
        self._until = 0.0
        self.tool_c = [22.0, 0.0]  # actual, target
        self.bed_c = [21.0, 0.0]

    # ---- switches for tests and demos --------------------------------------------------

    def set_offline(self, after_error: bool = False) -> None:
        with self._lock:
            self._state = "Offline after error" if after_error else "Offline"
            self._selected, self._run_from, self._elapsed_s = None, None, 0.0

    def set_error(self, message: str) -> None:
        with self._lock:
            self._state, self._error = f"Error: {message}", message
            self._run_from = None

    def set_connecting(self) -> None:
        with self._lock:
            self._state, self._selected, self._error = "Opening serial connection", None, None

    def set_operational(self) -> None:
        with self._lock:
            self._state, self._error = "Operational", None

    # ---- reads ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            self._advance()
            return self._state

    @property
    def operational(self) -> bool:
        return self.state in OPERATIONAL

    def _printed_s(self, now: float) -> float:
        running = now - self._run_from if self._run_from is not None else 0.0
        return self._elapsed_s + running

    def _advance(self) -> None:
        now = time.monotonic()
        if self._state == "Printing" and self._selected is not None:
            if self._printed_s(now) * self.speed >= self._selected.duration_sim_s:
                self._elapsed_s = self._selected.duration_sim_s / self.speed
                self._run_from = None
                self._state, self._until = "Finishing", now + TRANSITION_S
        if now < self._until:
            return
        if self._state == "Pausing":
            self._state = "Paused"
        elif self._state == "Resuming":
            self._state, self._run_from = "Printing", now
        elif self._state in ("Cancelling", "Finishing"):
            self.events.append("cancelled" if self._state == "Cancelling" else "finished")
            self._state = "Operational"
            self.tool_c[1] = self.bed_c[1] = 0.0  # afterPrintCancelled / afterPrintDone scripts

    def job(self) -> dict[str, Any]:
        """The body of ``GET /api/job``; fields are null when no file is selected."""
        with self._lock:
            self._advance()
            body: dict[str, Any] = {"job": self._job_info(), "progress": self._progress()}
            body["state"] = self._state
            if self._error:
                body["error"] = self._error
            return body

    def _job_info(self) -> dict[str, Any]:
        f = self._selected
        return {
            "file": {
                "name": f.name if f else None,
                "path": f.name if f else None,
                "display": f.name if f else None,
                "origin": "local" if f else None,
                "size": len(f.data) if f else None,
                "date": f.date if f else None,
            },
            "estimatedPrintTime": f.duration_sim_s if f else None,
            "averagePrintTime": None,
            "lastPrintTime": None,
            "filament": None,
            "user": "fabnet" if f else None,
        }

    def _progress(self) -> dict[str, Any]:
        f = self._selected
        if f is None or (self._run_from is None and self._elapsed_s == 0.0):
            return {"completion": None, "filepos": None, "printTime": None,
                    "printTimeLeft": None, "printTimeLeftOrigin": None}  # fmt: skip
        done_sim = min(self._printed_s(time.monotonic()) * self.speed, f.duration_sim_s)
        fraction = done_sim / f.duration_sim_s
        return {
            "completion": 100.0 * fraction,
            "filepos": int(len(f.data) * fraction),
            "printTime": int(done_sim),
            "printTimeLeft": int(f.duration_sim_s - done_sim),
            "printTimeLeftOrigin": "estimate",
        }

    def printer(self) -> dict[str, Any]:
        """The body of ``GET /api/printer`` (only asked for while operational)."""
        with self._lock:
            self._advance()
            state = self._state
            flags = {
                "operational": state in OPERATIONAL,
                "paused": state == "Paused",
                "printing": state in ("Printing", "Resuming", "Finishing"),
                "cancelling": state == "Cancelling",
                "pausing": state == "Pausing",
                "sdReady": False,
                "error": state.startswith("Error"),
                "ready": state == "Operational",
                "closedOrError": state.startswith(("Offline", "Closed", "Error")),
            }
            return {
                "temperature": {
                    "tool0": {"actual": self.tool_c[0], "target": self.tool_c[1], "offset": 0},
                    "bed": {"actual": self.bed_c[0], "target": self.bed_c[1], "offset": 0},
                },
                "sd": {"ready": False},
                "state": {"text": state, "flags": flags},
            }

    # ---- commands: each returns None or the 409 reason -------------------------------------

    def store(self, name: str, data: bytes) -> str | None:
        with self._lock:
            self._advance()
            if (
                self._selected is not None
                and self._selected.name == name
                and (self._state in ACTIVE_JOB)
            ):
                return "Trying to overwrite file that is currently being printed"
            self.files[name] = StoredFile(name, data, int(time.time()))
            self.events.append(f"upload {name}")
            return None

    def select(self, name: str, start: bool) -> str | None:
        with self._lock:
            self._advance()
            if start and self._state not in OPERATIONAL:
                return "Printer is not operational, cannot directly start printing"
            if self._state in ACTIVE_JOB or self._state == "Cancelling":
                return "Printer is already printing, cannot select a new file"
            self._selected, self._elapsed_s, self._run_from = self.files[name], 0.0, None
            self.events.append(f"select {name}")
            return self.start() if start else None

    def start(self) -> str | None:
        with self._lock:
            self._advance()
            if self._state in ACTIVE_JOB or self._state == "Cancelling":
                return "Printer already has an active print job, did you mean 'restart'?"
            if self._selected is None:
                return "Printer is not operational or no file selected"
            self._state, self._run_from, self._elapsed_s = "Printing", time.monotonic(), 0.0
            self.tool_c, self.bed_c = [210.0, 210.0], [60.0, 60.0]
            self.events.append("start")
            return None

    def pause(self, action: str) -> str | None:
        with self._lock:
            self._advance()
            if self._state not in ACTIVE_JOB:
                return "Printer is neither printing nor paused, 'pause' command cannot be performed"
            now = time.monotonic()
            paused = self._state in ("Paused", "Pausing")
            if action == "toggle":
                action = "resume" if paused else "pause"
            if action == "pause" and not paused and self._run_from is not None:
                self._elapsed_s, self._run_from = self._printed_s(now), None
                self._state, self._until = "Pausing", now + TRANSITION_S
            elif action == "resume" and self._state == "Paused":
                self._state, self._until = "Resuming", now + TRANSITION_S
            self.events.append(action)
            return None

    def cancel(self) -> str | None:
        with self._lock:
            self._advance()
            if self._state not in ACTIVE_JOB:
                return (
                    "Printer is neither printing nor paused, 'cancel' command cannot be performed"
                )
            now = time.monotonic()
            self._elapsed_s, self._run_from = self._printed_s(now), None
            self._state, self._until = "Cancelling", now + TRANSITION_S
            self.events.append("cancel")
            return None
