"""One machine's worker: the only thread that changes the machine's state. Commands arrive on
a queue (from paho's thread or the maker); between them the worker polls the driver and
reports progress, telemetry and the end of each task.

Stopping leaves the machine safe: the running job is cancelled (the driver turns heaters and
spindle off) and the task, or an accepted one not started yet, is handed back to the hub
(``reports.released``). Draining instead lets the running task finish and takes no new one.
The worker dispatches; ``station`` holds the machine, ``job_watch`` reports the running task
and ``handback`` gives work back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fabnet.agent import reports
from fabnet.agent.handback import STOP_S, HandBack
from fabnet.agent.job_watch import JobWatch
from fabnet.agent.offers import OfferDesk
from fabnet.agent.outbox import Outbox
from fabnet.agent.overrides import Overrides, reconfigured
from fabnet.agent.pending import PendingOffers
from fabnet.agent.prepare import PreparedJob, prepare
from fabnet.agent.reports import event_for
from fabnet.agent.setup import MachineSetup
from fabnet.agent.station import RunningJob, Station, raw_line
from fabnet.bus import topics
from fabnet.bus.messages import (
    FailureCause,
    MachineConfigure,
    MachineHeld,
    MachineState,
    Message,
    TaskAssign,
    TaskCancel,
    TaskCommand,
    TaskFailed,
    TaskOffer,
    TaskPause,
    TaskResume,
    TaskStarted,
)
from fabnet.drivers.base import Driver, DriverError, DriverState
from fabnet.drivers.sim import SimDriver
from fabnet.errors import Conflict, DeviceError, InvalidInput, NotFound, SafetyError

__all__ = ["STOP_S", "MachineRunner", "MachineSetup", "local_now", "start_job"]

log = logging.getLogger(__name__)

TICK_S = 0.1
RECONNECT_EVERY_S = 10.0
SEEN_IDS = 512  # command ids remembered to ignore QoS 1 redeliveries


def local_now() -> datetime:
    """The maker's local time, time-zone aware: availability windows are read in it."""
    return datetime.now().astimezone()


def start_job(driver: Driver, prepared: PreparedJob) -> None:
    """Start ``prepared`` on ``driver``; the sim driver is handed the analysis made while
    verifying, instead of parsing the file once more (issue 9). Raises what ``start`` does."""
    if isinstance(driver, SimDriver) and type(driver).start is SimDriver.start:
        driver.start(prepared.path, analysis=prepared.analysis)
    else:
        driver.start(prepared.path)


@dataclass(frozen=True)
class _Decide:
    task_id: str
    accept: bool


@dataclass(frozen=True)
class _Reset:
    pass


@dataclass(frozen=True)
class _Drain:
    pass


class MachineRunner:
    """Runs tasks on one machine through its driver. ``submit`` and ``decide`` may be called
    from any thread; everything else happens on the runner's own thread."""

    def __init__(
        self,
        setup: MachineSetup,
        driver: Driver,
        outbox: Outbox,
        pending: PendingOffers,
        clock: Callable[[], datetime] = local_now,
        overrides: Overrides | None = None,
    ) -> None:
        self.setup = setup
        self._overrides = overrides  # None: configure commands are applied, not persisted
        self.machine_id = setup.config.machine_id
        self._driver = driver
        self._out = outbox
        self._pending = pending
        self._queue: queue.Queue[Message | _Decide | _Reset | _Drain | None] = queue.Queue()
        self._events = topics.machine_events(setup.agent_id, self.machine_id)
        self._station = Station(setup.agent_id, setup.config, setup.profile, driver, outbox)
        self._desk = OfferDesk(setup.config, setup.windows, pending, outbox, self._events, clock)
        self._watch = JobWatch(setup.agent_id, self._station, outbox, self._events)
        self._handback = HandBack(self._station, self._desk, outbox, self._events)
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        # daemon: a driver call hung on a dead device must not keep the process alive
        self._thread = threading.Thread(
            target=self._run, name=f"machine-{self.machine_id}", daemon=True
        )

    # -- any thread ---------------------------------------------------------------------------

    @property
    def state(self) -> MachineState:
        return self._station.state

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_S) -> None:
        """Make the machine safe, hand its task back, disconnect and end (``request_stop``),
        waiting up to ``timeout_s``."""
        self.request_stop()
        self.join(timeout_s)

    def request_stop(self) -> None:
        """After the current command: cancel the running job (heaters and spindle off), hand
        the task and any accepted one back to the hub, disconnect the driver, end the thread."""
        self._queue.put(None)

    def join(self, timeout_s: float = STOP_S) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def drain(self) -> None:
        """Let the running task finish; decline new offers and hand back an accepted task not
        started yet. ``drained`` is set once no task runs (the machine then reports offline)."""
        self._queue.put(_Drain())

    @property
    def drained(self) -> bool:
        return self._handback.drained.is_set()

    def submit(self, command: Message) -> None:
        """Hand a hub command for this machine to the worker; returns at once."""
        self._queue.put(command)

    def decide(self, task_id: str, accept: bool) -> None:
        """The maker's answer to a pending offer. Raises NotFound if this machine has no
        pending offer for ``task_id`` (answered already, expired or never made)."""
        found = self._pending.get(self.machine_id, datetime.now(UTC))
        if found is None or found.offer.task_id != task_id:
            raise NotFound(f"machine {self.machine_id} has no pending offer for task {task_id}")
        self._queue.put(_Decide(task_id, accept))

    def reset(self) -> None:
        """Reconnect the driver after an error (a person has looked at the machine)."""
        self._queue.put(_Reset())

    # -- worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        self._station.connect()
        while True:
            try:
                item = self._queue.get(timeout=TICK_S)
            except queue.Empty:
                self._tick_safely()
                continue
            if item is None:
                break
            try:
                self._handle(item)
            except Exception:  # top of the worker loop: a bug must not end the machine
                log.exception("machine %s: handling %s failed", self.machine_id, item)
            self._tick_safely()
        self._tick_safely()  # a job that has just finished completes rather than goes back
        self._handback.shutdown()

    def _tick_safely(self) -> None:
        try:
            self._tick()
        except Exception:  # top of the worker loop
            log.exception("machine %s: poll failed", self.machine_id)

    def _handle(self, item: Message | _Decide | _Reset | _Drain) -> None:
        if isinstance(item, _Drain):
            self._handback.start_draining()
            self._tick_safely()
            return
        if isinstance(item, _Decide):
            accept = item.accept and not self._handback.draining
            state, busy_with = self._station.state, self._station.busy_with()
            self._desk.on_answer(item.task_id, accept, state, busy_with)
            return
        if isinstance(item, _Reset):
            self._on_reset()
            return
        if item.id in self._seen:
            log.debug("machine %s: duplicate command %s ignored", self.machine_id, item.id)
            return
        self._seen.append(item.id)
        if isinstance(item, TaskOffer) and self._handback.draining:
            self._handback.decline(item)
        elif isinstance(item, TaskOffer):
            self._desk.on_offer(item, self._station.state, self._station.busy_with())
        elif isinstance(item, TaskAssign):
            self._on_assign(item)
        elif isinstance(item, TaskCancel):
            self._on_cancel(item)
        elif isinstance(item, TaskPause | TaskResume):
            self._on_pause_resume(item)
        elif isinstance(item, MachineConfigure):
            self._on_configure(item)
        elif isinstance(item, MachineHeld):  # the maker must see it: the hub offers no work
            log.warning("machine %s is on hold on the hub after %d failures in a row (%s); "
                        "release it on the dashboard", self.machine_id, item.failures,
                        item.reason)  # fmt: skip
        else:
            log.warning("machine %s: %s is not a command, dropped", self.machine_id, item.TYPE)

    # -- commands -----------------------------------------------------------------------------

    def _on_assign(self, assign: TaskAssign) -> None:
        station = self._station
        if station.job is not None:
            if (station.job.task_id, station.job.attempt) != (assign.task_id, assign.attempt):
                self._fail(assign, f"machine busy with task {station.job.task_id}")
            return
        if self._handback.draining:
            self._handback.release_assign(assign)
            return
        if station.state in (MachineState.OFFLINE, MachineState.ERROR):
            self._fail(assign, f"machine not ready ({station.state.value})")
            return
        self._desk.assigned(assign.task_id)
        s = self.setup
        try:
            prepared = prepare(assign, s.profile, s.material, s.work_dir, s.hub_url, s.fetch)
        except (InvalidInput, SafetyError, DeviceError) as exc:
            self._fail(assign, reports.clip(str(exc)))
            return
        try:
            start_job(self._driver, prepared)
        except (Conflict, DeviceError) as exc:
            prepared.path.unlink(missing_ok=True)
            why, raw = reports.clip(f"machine did not start: {exc}"), raw_line(exc)
            cause = reports.failure_cause(DriverError(why, raw), DriverState.ERROR)
            self._fail(assign, why, raw, cause)
            station.set_state(station.driver_state())
            return
        station.job = RunningJob(assign.task_id, assign.attempt, prepared, time.monotonic())
        station.set_state(MachineState.BUSY)
        self._out.publish(self._events, event_for(TaskStarted, assign))
        log.info("machine %s: started task %s", self.machine_id, assign.task_id)

    def _fail(
        self,
        cmd: TaskCommand,
        reason: str,
        raw: str | None = None,
        cause: FailureCause = FailureCause.REFUSED,  # before anything ran: file refused, busy
    ) -> None:
        log.warning("machine %s: task %s failed: %s", self.machine_id, cmd.task_id, reason)
        raw = reports.clip(raw) if raw else None
        event = event_for(TaskFailed, cmd, reason=reason, raw=raw, cause=cause)
        self._out.publish_event(self._events, event)

    def _on_cancel(self, cancel: TaskCancel) -> None:
        station = self._station
        job = station.job
        if job is not None and job.task_id == cancel.task_id:
            station.cancel()
            station.end_job()
            station.set_state(station.driver_state())
            log.info("machine %s: task %s cancelled", self.machine_id, cancel.task_id)
        elif not self._desk.withdraw(cancel.task_id):
            log.info("machine %s: cancel of task %s it does not hold", self.machine_id,
                     cancel.task_id)  # fmt: skip

    def _on_pause_resume(self, cmd: TaskPause | TaskResume) -> None:
        job = self._station.job
        if job is None or job.task_id != cmd.task_id:
            log.info("machine %s: %s for task %s it is not running", self.machine_id, cmd.TYPE,
                     cmd.task_id)  # fmt: skip
            return
        try:
            if isinstance(cmd, TaskPause):
                self._driver.pause()
            else:
                self._driver.resume()
        except (Conflict, DeviceError) as exc:
            log.warning("machine %s: %s refused: %s", self.machine_id, cmd.TYPE, exc)

    def _on_configure(self, cmd: MachineConfigure) -> None:
        """New material and policy: kept on disk, used for the next offers, announced."""
        try:
            setup = reconfigured(self.setup, cmd)
        except InvalidInput as exc:
            log.warning("machine %s: %s %s refused: %s", self.machine_id, cmd.TYPE, cmd.id, exc)
            return
        if self._overrides is not None:
            try:
                self._overrides.save(cmd)
            except OSError as exc:
                log.error("machine %s: configuration not saved: %s", self.machine_id, exc)
        self.setup = setup
        self._station.configure(setup.config, setup.profile)
        self._desk.configure(setup.config, setup.windows)
        self._station.set_state(self._station.state, force=True)
        log.info("machine %s: configured: %s loaded, policy %s", self.machine_id,
                 setup.config.material, setup.config.policy)  # fmt: skip

    def _on_reset(self) -> None:
        job = self._station.job
        if job is not None:
            log.warning("machine %s: reset refused while task %s runs", self.machine_id,
                        job.task_id)  # fmt: skip
            return
        self._station.disconnect()
        self._station.connect()

    # -- polling ------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        self._desk.expire()
        if self._handback.finished_draining():
            return
        station = self._station
        if station.state is MachineState.OFFLINE:
            if now - station.last_connect_try >= RECONNECT_EVERY_S:
                station.connect()
            return
        if station.job is None:
            self._watch.idle(now)
            return
        self._watch.poll(station.job, now)
