"""One machine's worker: the only thread that changes the machine's state. Commands arrive on
a queue (from paho's thread or the maker); between them the worker polls the driver and
reports progress, telemetry and the end of each task.

Stopping leaves the machine safe: the running job is cancelled (the driver turns heaters and
spindle off) and the task, or an accepted one not started yet, is handed back to the hub
(``reports.released``). Draining instead lets the running task finish and takes no new one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fabnet.agent import reports
from fabnet.agent.artifacts import FetchSettings
from fabnet.agent.offers import OfferDesk
from fabnet.agent.outbox import Outbox
from fabnet.agent.overrides import Overrides, reconfigured
from fabnet.agent.pending import PendingOffers
from fabnet.agent.prepare import PreparedJob, prepare
from fabnet.agent.reports import event_for
from fabnet.bus import topics
from fabnet.bus.messages import (
    MachineConfigure,
    MachineState,
    Message,
    TaskAssign,
    TaskCancel,
    TaskCommand,
    TaskCompleted,
    TaskDeclined,
    TaskFailed,
    TaskOffer,
    TaskPause,
    TaskResume,
    TaskStarted,
)
from fabnet.config import MachineConfig
from fabnet.core.cron import CronExpr
from fabnet.drivers.base import Driver, DriverState, Status
from fabnet.errors import Conflict, DeviceError, InvalidInput, NotFound, SafetyError
from fabnet.profiles import FdmMaterial, MachineProfile

log = logging.getLogger(__name__)

TICK_S = 0.1
PROGRESS_EVERY_S = 1.0
TELEMETRY_EVERY_S = 2.0
IDLE_TELEMETRY_EVERY_S = 10.0
RECONNECT_EVERY_S = 10.0
SEEN_IDS = 512  # command ids remembered to ignore QoS 1 redeliveries
STOP_S = 90.0  # a cancel may lift Z and wait for the firmware's buffers (marlin: up to 60 s)
DRAINING = "the agent is draining: it finishes its running tasks and takes no new ones"


def local_now() -> datetime:
    """The maker's local time, time-zone aware: availability windows are read in it."""
    return datetime.now().astimezone()


@dataclass(frozen=True)
class MachineSetup:
    """Everything fixed about one machine of this agent."""

    agent_id: str
    config: MachineConfig
    profile: MachineProfile
    material: FdmMaterial | None  # density for grams; None for CNC stock
    windows: tuple[CronExpr, ...]
    work_dir: Path
    hub_url: str
    fetch: FetchSettings = field(default_factory=FetchSettings)


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


@dataclass
class _Job:
    task_id: str
    attempt: int
    prepared: PreparedJob
    started: float  # monotonic s
    last_progress: float = 0.0


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
        self._caps = reports.capabilities(setup.config, setup.profile)
        self._events = topics.machine_events(setup.agent_id, self.machine_id)
        self._state = MachineState.OFFLINE
        self._job: _Job | None = None
        self._desk = OfferDesk(setup.config, setup.windows, pending, outbox, self._events, clock)
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        self._last_telemetry = 0.0
        self._last_connect_try = 0.0
        self._draining = False
        self._drained = threading.Event()
        # daemon: a driver call hung on a dead device must not keep the process alive
        self._thread = threading.Thread(
            target=self._run, name=f"machine-{self.machine_id}", daemon=True
        )

    # -- any thread ---------------------------------------------------------------------------

    @property
    def state(self) -> MachineState:
        return self._state

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
        return self._drained.is_set()

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
        self._connect()
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
        self._shutdown()

    def _tick_safely(self) -> None:
        try:
            self._tick()
        except Exception:  # top of the worker loop
            log.exception("machine %s: poll failed", self.machine_id)

    def _shutdown(self) -> None:
        """The safe stop (see ``request_stop``)."""
        self._tick_safely()  # a job that has just finished completes rather than goes back
        job = self._job
        if job is not None:
            why = "the agent stopped; the job was cancelled and the machine made safe"
            failure = self._stop_machine()
            if failure:
                why = f"the agent stopped; cancelling the job failed: {failure}"
            self._out.publish_terminal(
                self._events, reports.released(self.machine_id, job.task_id, job.attempt, why)
            )
            log.info("machine %s: task %s handed back: %s", self.machine_id, job.task_id, why)
            self._end_job()
        self._release_hold("the agent stopped before the task started")
        self._set_state(MachineState.OFFLINE)
        self._disconnect()

    def _stop_machine(self) -> str | None:
        """Cancel the job: the driver stops it and turns heaters and spindle off. Returns what
        went wrong, or None."""
        try:
            self._driver.cancel()
        except (Conflict, DeviceError) as exc:
            log.error("machine %s: cancel failed: %s (%s)", self.machine_id, exc, _raw(exc))
            return str(exc)
        return None

    def _release_hold(self, why: str) -> None:
        """Hand back an accepted offer whose task has not started here."""
        hold = self._desk.hold
        if hold is not None:
            self._desk.withdraw(hold.task_id)
            event = reports.released(self.machine_id, hold.task_id, hold.attempt, why)
            self._out.publish_terminal(self._events, event)

    def _start_draining(self) -> None:
        self._draining = True
        self._release_hold(DRAINING)
        log.info("machine %s: draining", self.machine_id)
        self._tick_safely()

    def _disconnect(self) -> None:
        try:
            self._driver.disconnect()
        except (DeviceError, OSError) as exc:
            log.warning("machine %s: disconnect: %s", self.machine_id, exc)

    def _connect(self) -> None:
        self._last_connect_try = time.monotonic()
        try:
            self._driver.connect()
        except (DeviceError, OSError, Conflict) as exc:
            log.warning("machine %s: cannot connect its driver: %s", self.machine_id, exc)
            self._set_state(MachineState.OFFLINE, force=True)
            return
        self._set_state(MachineState.IDLE)

    def _set_state(self, state: MachineState, force: bool = False) -> None:
        if state is self._state and not force:
            return
        self._state = state
        task_id = self._job.task_id if self._job else None
        status = reports.machine_status(self.setup.config, self._caps, state, task_id)
        self._out.publish_status(
            topics.machine_status(self.setup.agent_id, self.machine_id), status
        )

    def _handle(self, item: Message | _Decide | _Reset | _Drain) -> None:
        if isinstance(item, _Drain):
            self._start_draining()
            return
        if isinstance(item, _Decide):
            accept = item.accept and not self._draining
            self._desk.on_answer(item.task_id, accept, self._state, self._busy_with())
            return
        if isinstance(item, _Reset):
            self._on_reset()
            return
        if item.id in self._seen:
            log.debug("machine %s: duplicate command %s ignored", self.machine_id, item.id)
            return
        self._seen.append(item.id)
        if isinstance(item, TaskOffer) and self._draining:
            self._out.publish(self._events, event_for(TaskDeclined, item, reason=DRAINING))
        elif isinstance(item, TaskOffer):
            self._desk.on_offer(item, self._state, self._busy_with())
        elif isinstance(item, TaskAssign):
            self._on_assign(item)
        elif isinstance(item, TaskCancel):
            self._on_cancel(item)
        elif isinstance(item, TaskPause | TaskResume):
            self._on_pause_resume(item)
        elif isinstance(item, MachineConfigure):
            self._on_configure(item)
        else:
            log.warning("machine %s: %s is not a command, dropped", self.machine_id, item.TYPE)

    # -- running a task -----------------------------------------------------------------------

    def _on_assign(self, assign: TaskAssign) -> None:
        if self._job is not None:
            if (self._job.task_id, self._job.attempt) != (assign.task_id, assign.attempt):
                self._fail(assign, f"machine busy with task {self._job.task_id}")
            return
        if self._draining:
            self._desk.assigned(assign.task_id)
            event = reports.released(self.machine_id, assign.task_id, assign.attempt, DRAINING)
            self._out.publish_terminal(self._events, event)
            return
        if self._state in (MachineState.OFFLINE, MachineState.ERROR):
            self._fail(assign, f"machine not ready ({self._state.value})")
            return
        self._desk.assigned(assign.task_id)
        s = self.setup
        try:
            prepared = prepare(assign, s.profile, s.material, s.work_dir, s.hub_url, s.fetch)
        except (InvalidInput, SafetyError, DeviceError) as exc:
            self._fail(assign, reports.clip(str(exc)))
            return
        try:
            self._driver.start(prepared.path)
        except (Conflict, DeviceError) as exc:
            prepared.path.unlink(missing_ok=True)
            self._fail(assign, reports.clip(f"machine did not start: {exc}"), _raw(exc))
            self._set_state(self._driver_state())
            return
        self._job = _Job(assign.task_id, assign.attempt, prepared, time.monotonic())
        self._set_state(MachineState.BUSY)
        self._out.publish(self._events, event_for(TaskStarted, assign))
        log.info("machine %s: started task %s", self.machine_id, assign.task_id)

    def _busy_with(self) -> str | None:
        return self._job.task_id if self._job is not None else None

    def _fail(self, cmd: TaskCommand, reason: str, raw: str | None = None) -> None:
        log.warning("machine %s: task %s failed: %s", self.machine_id, cmd.task_id, reason)
        event = event_for(TaskFailed, cmd, reason=reason, raw=reports.clip(raw) if raw else None)
        self._out.publish_terminal(self._events, event)

    def _driver_state(self) -> MachineState:
        state = self._driver.status().state
        if state is DriverState.ERROR:
            return MachineState.ERROR
        if state is DriverState.DISCONNECTED:
            return MachineState.OFFLINE
        return MachineState.IDLE

    def _on_cancel(self, cancel: TaskCancel) -> None:
        job = self._job
        if job is not None and job.task_id == cancel.task_id:
            self._stop_machine()
            self._end_job()
            self._set_state(self._driver_state())
            log.info("machine %s: task %s cancelled", self.machine_id, cancel.task_id)
        elif not self._desk.withdraw(cancel.task_id):
            log.info("machine %s: cancel of task %s it does not hold", self.machine_id,
                     cancel.task_id)  # fmt: skip

    def _on_pause_resume(self, cmd: TaskPause | TaskResume) -> None:
        if self._job is None or self._job.task_id != cmd.task_id:
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
        self._caps = reports.capabilities(setup.config, setup.profile)
        self._desk.configure(setup.config, setup.windows)
        self._set_state(self._state, force=True)
        log.info("machine %s: configured: %s loaded, policy %s", self.machine_id,
                 setup.config.material, setup.config.policy)  # fmt: skip

    def _on_reset(self) -> None:
        if self._job is not None:
            log.warning("machine %s: reset refused while task %s runs", self.machine_id,
                        self._job.task_id)  # fmt: skip
            return
        self._disconnect()
        self._connect()

    def _end_job(self) -> None:
        if self._job is not None:
            self._job.prepared.path.unlink(missing_ok=True)
        self._job = None

    # -- polling ------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        self._desk.expire()
        if self._draining and self._job is None:
            self._set_state(MachineState.OFFLINE)  # no more offers; nothing left to finish
            self._drained.set()
            return
        if self._state is MachineState.OFFLINE:
            if now - self._last_connect_try >= RECONNECT_EVERY_S:
                self._connect()
            return
        if self._job is None:
            if now - self._last_telemetry >= IDLE_TELEMETRY_EVERY_S:
                self._send_telemetry(self._driver.status(), now)
            return
        self._poll_job(self._job, now)

    def _poll_job(self, job: _Job, now: float) -> None:
        status = self._driver.status()
        if status.state is DriverState.DONE:
            self._complete(job, status, now)
        elif status.state is DriverState.ERROR:
            error = status.error
            reason = error.message if error else "machine reported an error"
            self._fail_job(job, reason, error.raw if error else None, MachineState.ERROR)
        elif status.state in (DriverState.IDLE, DriverState.DISCONNECTED):
            reason = f"machine went {status.state.value} before the task finished"
            self._fail_job(job, reason, None, self._driver_state())
        else:
            paused = status.state is DriverState.PAUSED
            self._set_state(MachineState.PAUSED if paused else MachineState.BUSY)
            if now - job.last_progress >= PROGRESS_EVERY_S:
                job.last_progress = now
                event = reports.progress(self.machine_id, job.task_id, job.attempt, status,
                                         job.prepared.lines_total)  # fmt: skip
                self._out.publish(self._events, event)
            if now - self._last_telemetry >= TELEMETRY_EVERY_S:
                self._send_telemetry(status, now)

    def _send_telemetry(self, status: Status, now: float) -> None:
        self._last_telemetry = now
        task_id = self._job.task_id if self._job else None
        msg = reports.telemetry(self.machine_id, task_id, status)
        self._out.publish(
            topics.machine_telemetry(self.setup.agent_id, self.machine_id), msg, qos=0
        )

    def _complete(self, job: _Job, status: Status, now: float) -> None:
        machine_s = status.progress.elapsed_s or (now - job.started)
        event = TaskCompleted(
            machine=self.machine_id,
            task_id=job.task_id,
            attempt=job.attempt,
            grams=job.prepared.grams,
            machine_s=machine_s,
            sha256=job.prepared.sha256,
        )
        self._out.publish_terminal(self._events, event)
        log.info("machine %s: task %s completed (%.1f g, %.1f s)", self.machine_id, job.task_id,
                 event.grams, machine_s)  # fmt: skip
        self._end_job()
        self._set_state(MachineState.IDLE)

    def _fail_job(self, job: _Job, reason: str, raw: str | None, state: MachineState) -> None:
        event = TaskFailed(
            machine=self.machine_id,
            task_id=job.task_id,
            attempt=job.attempt,
            reason=reports.clip(reason),
            raw=reports.clip(raw) if raw else None,
        )
        self._out.publish_terminal(self._events, event)
        log.warning("machine %s: task %s failed: %s (%s)", self.machine_id, job.task_id, reason,
                    raw)  # fmt: skip
        self._end_job()
        self._set_state(state)


def _raw(exc: Exception) -> str | None:
    raw = getattr(exc, "raw", None)
    return raw if isinstance(raw, str) else None
