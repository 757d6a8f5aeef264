"""The dispatcher: the one place the hub changes task and machine state.

Bus handlers (paho's thread) and the scheduler only put work into ``inbox``; one worker thread
takes it out and applies it, so there is exactly one writer of hub state in the process. The
slow part, producing G-code for an accepted task, runs on a small pool and comes back to the
inbox as an "assign" step.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.client import BusClient
from fabnet.bus.drops import DropLog
from fabnet.bus.topics import Topic
from fabnet.core import events as ev
from fabnet.core.jobs import Quality
from fabnet.core.matching import MachineIndex
from fabnet.core.states import IgnoreReason, MachineState, TaskState
from fabnet.core.tasks import Ignored, Transition
from fabnet.errors import Conflict, FabnetError, NotFound
from fabnet.hub.artifacts import Artifact, ArtifactStore
from fabnet.hub.designs import DesignCatalog, estimate_part
from fabnet.hub.holding import DEFAULT_MAX_CONSECUTIVE_FAILURES, HoldKeeper
from fabnet.hub.machines import hub_machine_id, machine_from_status, split_machine_id
from fabnet.hub.translate import completion_refusal, core_event
from fabnet.store import Store
from fabnet.store.telemetry import TemperatureSample

log = logging.getLogger(__name__)

Work = Callable[[], None]
FAIRNESS_REFRESH = timedelta(seconds=30)
MATCH_BATCH = 500
DEFAULT_MAX_MACHINES_PER_AGENT = 64


class Dispatcher:
    """Applies agents' messages and the scheduler's ticks to the store, and sends commands."""

    def __init__(
        self,
        store: Store,
        bus: BusClient,
        designs: DesignCatalog,
        artifacts: ArtifactStore,
        public_url: str,
        lease_s: float,
        offer_timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_machines_per_agent: int = DEFAULT_MAX_MACHINES_PER_AGENT,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    ) -> None:
        self._store = store
        self._holds = HoldKeeper(store, self._send_to_agent, max_consecutive_failures)
        self._max_machines = max_machines_per_agent
        self.drops = DropLog(log)  # agents' messages refused here, per reason
        self._bus = bus
        self._designs = designs
        self._artifacts = artifacts
        self._public_url = public_url.rstrip("/")
        self._lease_s = lease_s
        self._offer_s = offer_timeout_s
        self._clock = clock
        self._index = MachineIndex()
        self._fairness_at: datetime | None = None
        self._offered_to: dict[str, str] = {}  # task id -> machine holding its open offer
        self._inbox: queue.Queue[Work | None] = queue.Queue()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hub-produce")
        self._thread = threading.Thread(target=self._work, name="hub-dispatch", daemon=True)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        for machine in self._store.catalog.list_machines():
            self._index.upsert(machine)
        self._thread.start()

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, work: Work) -> None:
        """Run ``work`` on the dispatcher thread."""
        self._inbox.put(work)

    def _work(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            try:
                item()
            except Exception:  # noqa: BLE001 - the top of a worker loop: log and go on
                log.exception("dispatcher step failed")

    # -- bus entry points (paho's thread: hand over, never block) --------------------------

    def on_message(self, topic: Topic, message: msg.Message) -> None:
        self.submit(lambda: self._handle(topic, message))

    def tick(self) -> None:
        """Scheduler entry point: sweep leases and offers, then offer queued work."""
        self.submit(self._tick)

    # -- the worker's steps -----------------------------------------------------------------

    def _handle(self, topic: Topic, message: msg.Message) -> None:
        now = self._clock()
        if topic.agent is None:
            log.debug("ignoring %s on %s", message.TYPE, topic)
            return
        try:
            self._dispatch(topic.agent, message, now)
        except FabnetError as exc:  # an agent's bad input (unknown task, bad figures): one line
            self.drops.drop(type(exc).__name__, str(topic), f"{message.TYPE} {message.id}: {exc}")

    def _dispatch(self, agent: str, message: msg.Message, now: datetime) -> None:
        if isinstance(message, msg.AgentStatus):
            self._on_agent_status(agent, message, now)
        elif isinstance(message, msg.MachineStatus):
            self._on_machine_status(agent, message, now)
        elif isinstance(message, msg.TaskEvent):
            self._on_task_event(agent, message, now)
        elif isinstance(message, msg.MachineTelemetry) and message.task_id is not None:
            self._on_telemetry(agent, message.task_id, message, now)

    def _on_telemetry(
        self, agent: str, task_id: str, t: msg.MachineTelemetry, now: datetime
    ) -> None:
        """Temperatures of a running task, for its chart (issue 10); hub time, not the agent's."""
        sample = TemperatureSample(now, t.hotend_c, t.hotend_target_c, t.bed_c, t.bed_target_c)
        self._store.telemetry.record(task_id, hub_machine_id(agent, t.machine), sample)

    def _ensure_maker(self, agent: str, now: datetime) -> None:
        try:
            self._store.catalog.get_maker(agent)
        except NotFound:
            self._store.catalog.add_maker(agent, now, maker_id=agent)

    def _on_agent_status(self, agent: str, status: msg.AgentStatus, now: datetime) -> None:
        if status.state is msg.AgentState.ONLINE:
            return
        log.info("agent %s went offline: requeueing its work", agent)
        for machine in self._store.catalog.list_machines(maker_id=agent):
            for moved in self._store.tasks.machine_offline(machine.machine_id, now):
                log.info("task %s back to %s (machine offline)", moved.task.task_id, moved.to_state)
            self._refresh_machine(machine.machine_id)

    def _on_machine_status(self, agent: str, status: msg.MachineStatus, now: datetime) -> None:
        self._ensure_maker(agent, now)
        machine = machine_from_status(agent, status, now)
        known = self._store.catalog.list_machines(maker_id=agent)
        if len(known) >= self._max_machines and machine.machine_id not in {
            k.machine_id for k in known
        }:
            detail = f"{status.machine}: agent has {len(known)} machines, the cap"
            self.drops.drop("machine-cap", agent, detail)
            return
        self._store.catalog.upsert_machine(machine)
        if machine.state is MachineState.OFFLINE:
            self._store.tasks.machine_offline(machine.machine_id, now)
        self._refresh_machine(machine.machine_id)  # as stored: with its hold, if any

    def _refresh_machine(self, machine_id: str) -> None:
        try:
            self._index.upsert(self._store.catalog.get_machine(machine_id))
        except NotFound:
            self._index.remove(machine_id)

    def _on_task_event(self, agent: str, event: msg.TaskEvent, now: datetime) -> None:
        machine_id = hub_machine_id(agent, event.machine)
        core = core_event(event, machine_id, self._lease_s)
        if core is None:
            return
        if isinstance(event, msg.TaskCompleted):
            refusal = completion_refusal(
                event, self._artifacts.assignment(event.task_id, event.attempt)
            )
            if refusal:  # not credited; the lease runs out if nothing real follows
                self.drops.drop("completion", machine_id, f"task {event.task_id}: {refusal}")
                return
        outcome = self._store.apply_event(event.task_id, core, now)
        if isinstance(outcome, Transition) and self._holds.after_attempt(
            outcome.attempt_ended, now
        ):
            self._refresh_machine(machine_id)
        if isinstance(event, msg.TaskAccepted | msg.TaskDeclined):
            self._offered_to.pop(event.task_id, None)
        if not isinstance(outcome, Transition):
            log.debug("event %s on task %s ignored: %s", event.TYPE, event.task_id, outcome)
            if self._works_on_lost_task(outcome, event, machine_id):
                # the agent works on something the hub no longer gives it: tell it to stop
                self._send(machine_id, msg.TaskCancel, event.task_id, event.attempt)
            self._refresh_machine(machine_id)
            return
        log.info(
            "task %s: %s -> %s (%s)",
            event.task_id,
            outcome.from_state,
            outcome.to_state,
            outcome.cause,
        )
        if isinstance(event, msg.TaskAccepted):
            self._produce(outcome)
        elif outcome.to_state.is_final or outcome.to_state.value == "queued":
            self._refresh_machine(machine_id)

    def _works_on_lost_task(self, ignored: Ignored, event: msg.TaskEvent, machine_id: str) -> bool:
        """True when an ignored event shows the machine busy with a task it no longer holds
        (an older offer, or a task cancelled, failed or done elsewhere). A duplicate, or a late
        report about work this machine finished, needs no answer."""
        if not isinstance(event, msg.TaskAccepted | msg.TaskStarted | msg.TaskProgress):
            return False
        if ignored.reason is IgnoreReason.STALE:
            return True
        if ignored.reason is not IgnoreReason.FINAL:
            return False
        task = self._store.tasks.get(event.task_id)
        finished_here = bool(task.attempts) and task.attempts[-1].machine_id == machine_id
        return not (task.state is TaskState.DONE and finished_here)

    def _produce(self, claimed: Transition) -> None:
        task = claimed.task
        job = self._store.jobs.get(task.job_id).spec
        machine = self._store.catalog.get_machine(task.machine_id or "")
        entry = self._designs.get(job.design_id)

        def produce() -> None:
            try:
                artifact = self._artifacts.produce(
                    entry,
                    machine.profile,
                    job.material,
                    Quality(job.quality),
                    job.parts_per_task,
                    machine.machine_id,
                )
            except FabnetError as exc:
                log.warning("cannot produce task %s for %s: %s", task.task_id, machine.profile, exc)
                reason = str(exc)
                self.submit(
                    lambda: self._fail_production(
                        task.task_id, machine.machine_id, task.offer_no, reason
                    )
                )
                return
            self.submit(
                lambda: self._assign(
                    task.task_id, machine.machine_id, task.offer_no, machine.profile, artifact
                )
            )

        self._pool.submit(produce)

    def _fail_production(self, task_id: str, machine_id: str, offer_no: int, reason: str) -> None:
        event = ev.TaskFailed(
            machine_id=machine_id,
            offer_no=offer_no,
            reason=f"hub could not produce G-code: {reason}"[:500],
        )
        self._store.apply_event(task_id, event, self._clock())
        self._send(machine_id, msg.TaskCancel, task_id, offer_no)
        self._refresh_machine(machine_id)

    def _assign(
        self, task_id: str, machine_id: str, offer_no: int, profile: str, artifact: Artifact
    ) -> None:
        now = self._clock()
        moved = self._store.apply_event(
            task_id,
            ev.TaskAssigned(machine_id=machine_id, offer_no=offer_no, lease_s=self._lease_s),
            now,
        )
        if not isinstance(moved, Transition):
            log.info("task %s no longer claimed by %s; not assigning", task_id, machine_id)
            return
        token = self._artifacts.record_assignment(task_id, offer_no, artifact)
        agent, machine = split_machine_id(machine_id)
        command = msg.TaskAssign(
            machine=machine,
            task_id=task_id,
            attempt=offer_no,
            url=f"{self._public_url}/artifacts/{task_id}/{offer_no}",
            token=token,
            size_bytes=artifact.size_bytes,
            sha256=artifact.sha256,
            profile=profile,
        )
        self._bus.publish(topics.agent_commands(agent), command)

    def _tick(self) -> None:
        now = self._clock()
        for machine_id in self._holds.released():
            self._refresh_machine(machine_id)
        for moved in [*self._store.tasks.expire_offers(now), *self._store.expire_leases(now)]:
            self._holds.after_attempt(moved.attempt_ended, now)
            offered_to = self._offered_to.pop(moved.task.task_id, None)
            holder = moved.attempt_ended.machine_id if moved.attempt_ended else offered_to
            log.info(
                "task %s: %s -> %s (%s)",
                moved.task.task_id,
                moved.from_state,
                moved.to_state,
                moved.cause,
            )
            if holder:
                self._send(holder, msg.TaskCancel, moved.task.task_id, moved.task.offer_no)
                self._refresh_machine(holder)
        if self._fairness_at is None or now - self._fairness_at > FAIRNESS_REFRESH:
            self._index.set_recent_hours(self._store.ledger.recent_hours_by_maker(now))
            self._fairness_at = now
        self._offer(now)

    def _offer(self, now: datetime) -> None:
        queued = self._store.queued_tasks(MATCH_BATCH)
        if not queued:
            return
        for assignment in self._index.match(queued, now):
            offer_s = self._offer_s if assignment.auto_accept else self._offer_s * 10
            moved = self._store.apply_event(
                assignment.task_id,
                ev.TaskOffered(machine_id=assignment.machine_id, offer_s=offer_s),
                now,
            )
            if not isinstance(moved, Transition):
                self._refresh_machine(assignment.machine_id)
                continue
            self._offered_to[assignment.task_id] = assignment.machine_id
            self._send_offer(moved, assignment.machine_id, assignment.hours)

    def _send_offer(self, moved: Transition, machine_id: str, hours: float) -> None:
        task = moved.task
        job = self._store.jobs.get(task.job_id).spec
        entry = self._designs.get(job.design_id)
        _, grams = estimate_part(entry.facts, job.material)
        agent, machine = split_machine_id(machine_id)
        offer = msg.TaskOffer(
            machine=machine,
            task_id=task.task_id,
            attempt=task.offer_no,
            design_id=job.design_id,
            design_name=entry.design.name[:256],
            material=job.material,
            est_grams=grams * job.parts_per_task,
            est_machine_s=hours * 3600.0,
            deadline=job.deadline,
        )
        self._bus.publish(topics.agent_commands(agent), offer)

    def _send_to_agent(self, agent: str, command: msg.Message) -> None:
        self._bus.publish(topics.agent_commands(agent), command)

    def _send(
        self, machine_id: str, command: type[msg.TaskCommand], task_id: str, offer_no: int
    ) -> None:
        agent, machine = split_machine_id(machine_id)
        if not agent or not machine or offer_no < 1:
            return
        self._bus.publish(
            topics.agent_commands(agent),
            command(machine=machine, task_id=task_id, attempt=offer_no),
        )

    # -- hub-side commands (from the API) ---------------------------------------------------

    def control_task(self, task_id: str, pause: bool) -> None:
        """Pause or resume a running task on its machine; Conflict when it is not running."""
        task = self._store.tasks.get(task_id)
        if task.state is not TaskState.RUNNING or not task.machine_id:
            action = "pause" if pause else "resume"
            raise Conflict(f"cannot {action} task {task_id}: it is {task.state.value}, not running")
        command = msg.TaskPause if pause else msg.TaskResume
        self.submit(lambda: self._send(task.machine_id or "", command, task_id, task.offer_no))

    def configure_machine(
        self,
        machine_id: str,
        material: str,
        materials: tuple[str, ...],
        max_task_hours: float | None,
        auto_accept: bool,
        windows: tuple[str, ...],
    ) -> bool:
        """Send ``machine.configure`` (loaded material; accepted materials, longest task in h or
        None, auto-accept, cron windows) to the machine's agent from the dispatcher thread.
        True if the hub is connected to the broker now (else QoS 1 queues it for the
        reconnect). Raises InvalidInput, in the caller, for a value the message cannot carry."""
        agent, machine = split_machine_id(machine_id)
        command = msg.MachineConfigure(machine=machine, material=material, materials=materials,
                                       max_task_hours=max_task_hours, auto_accept=auto_accept,
                                       windows=windows)  # fmt: skip
        msg.encode(command)  # checked here so the API answers 400, not the worker's log

        def send() -> None:
            self._bus.publish(topics.agent_commands(agent), command)

        self.submit(send)
        return self._bus.connected

    def cancel_job(self, job_id: str, reason: str) -> None:
        """Cancel every unfinished task of a job and tell the machines holding them."""
        done = threading.Event()
        result: list[Transition] = []

        def step() -> None:
            try:
                holders = {
                    t.task_id: (t.machine_id, t.offer_no)
                    for t in self._store.tasks.find(job_id=job_id)
                    if t.machine_id and not t.state.is_final
                }
                result.extend(self._store.jobs.cancel(job_id, self._clock(), reason))
                for task_id, (machine_id, offer_no) in holders.items():
                    if machine_id:
                        self._send(machine_id, msg.TaskCancel, task_id, offer_no)
                        self._refresh_machine(machine_id)
            finally:
                done.set()

        self.submit(step)
        done.wait(timeout=30)
