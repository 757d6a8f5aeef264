"""The worker's hold on one machine: its driver connection, the state last announced to the hub
and the task running on it. Only the machine's worker thread touches a ``Station``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from fabnet.agent import reports
from fabnet.agent.outbox import Outbox
from fabnet.agent.prepare import PreparedJob
from fabnet.bus import topics
from fabnet.bus.messages import MachineState
from fabnet.config import MachineConfig
from fabnet.drivers.base import Driver, DriverState
from fabnet.errors import Conflict, DeviceError
from fabnet.profiles import MachineProfile

log = logging.getLogger(__name__)


@dataclass
class RunningJob:
    """A task the driver has started; ``started`` is monotonic s, the fallback for machine
    hours when the driver does not report its own elapsed time."""

    task_id: str
    attempt: int
    prepared: PreparedJob
    started: float  # monotonic s
    last_progress: float = 0.0


class Station:
    """One machine's driver and its announced state, kept together because every state change
    is published with the task then running (the hub reads both from one retained status)."""

    def __init__(
        self,
        agent_id: str,
        config: MachineConfig,
        profile: MachineProfile,
        driver: Driver,
        outbox: Outbox,
    ) -> None:
        self.machine_id = config.machine_id
        self.driver = driver
        self.state = MachineState.OFFLINE
        self.job: RunningJob | None = None
        self.last_connect_try = 0.0  # monotonic s
        self._out = outbox
        self._config = config
        self._caps = reports.capabilities(config, profile)
        self._status_topic = topics.machine_status(agent_id, self.machine_id)

    def configure(self, config: MachineConfig, profile: MachineProfile) -> None:
        """Use a new configuration in the next status; the caller re-announces it."""
        self._config = config
        self._caps = reports.capabilities(config, profile)

    def busy_with(self) -> str | None:
        return self.job.task_id if self.job is not None else None

    def set_state(self, state: MachineState, force: bool = False) -> None:
        """Announce ``state`` (retained) if it changed, or always with ``force``: a changed
        configuration or a failed connect must reach the hub even when the state did not."""
        if state is self.state and not force:
            return
        self.state = state
        status = reports.machine_status(self._config, self._caps, state, self.busy_with())
        self._out.publish_status(self._status_topic, status)

    def connect(self) -> None:
        """Connect the driver; a machine that cannot be reached is announced offline and the
        worker retries later (``last_connect_try``)."""
        self.last_connect_try = time.monotonic()
        try:
            self.driver.connect()
        except (DeviceError, OSError, Conflict) as exc:
            log.warning("machine %s: cannot connect its driver: %s", self.machine_id, exc)
            self.set_state(MachineState.OFFLINE, force=True)
            return
        self.set_state(MachineState.IDLE)

    def disconnect(self) -> None:
        """Disconnect the driver; a device already gone is only worth a warning."""
        try:
            self.driver.disconnect()
        except (DeviceError, OSError) as exc:
            log.warning("machine %s: disconnect: %s", self.machine_id, exc)

    def driver_state(self) -> MachineState:
        """The state to announce after a job ended, read from the driver rather than assumed:
        a cancel or a failed start may have left the machine in error or disconnected."""
        state = self.driver.status().state
        if state is DriverState.ERROR:
            return MachineState.ERROR
        if state is DriverState.DISCONNECTED:
            return MachineState.OFFLINE
        return MachineState.IDLE

    def cancel(self) -> str | None:
        """Cancel the job: the driver stops it and turns heaters and spindle off. Returns what
        went wrong, or None."""
        try:
            self.driver.cancel()
        except (Conflict, DeviceError) as exc:
            log.error("machine %s: cancel failed: %s (%s)", self.machine_id, exc, raw_line(exc))
            return str(exc)
        return None

    def end_job(self) -> None:
        """Forget the running job and delete its G-code file, which only this run needed."""
        if self.job is not None:
            self.job.prepared.path.unlink(missing_ok=True)
        self.job = None


def raw_line(exc: Exception) -> str | None:
    """The firmware's own line behind a device error, kept verbatim for the maker."""
    raw = getattr(exc, "raw", None)
    return raw if isinstance(raw, str) else None
