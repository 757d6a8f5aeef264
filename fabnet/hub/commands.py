"""The hub's commands from an ``api`` process (``fabnet hub --role api``), which runs no
dispatcher: each applies its change through the store itself, then tells the agent over the
process's own bus client. The dispatcher processes pick up from the store (a claimed task is
produced on their next tick; a declined one is offered again).

In the one-process role the ``Dispatcher`` is these commands (same method names).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.client import BusClient
from fabnet.core import events as ev
from fabnet.core.ids import new_id
from fabnet.core.states import TaskState
from fabnet.core.tasks import Transition
from fabnet.errors import Conflict
from fabnet.hub.dispatch.context import claim_lease_s
from fabnet.hub.dispatch.dispatcher import DEFAULT_PRODUCTION_GRACE_S
from fabnet.hub.machines import hub_machine_id, split_machine_id
from fabnet.store import Store

log = logging.getLogger(__name__)


class ApiCommands:
    """Cancel, pause/resume, configure and offer answers, for a hub process without a
    dispatcher. Thread-safe (every call is its own transaction; paho's publish is)."""

    def __init__(
        self,
        store: Store,
        bus: BusClient,
        lease_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        production_grace_s: float = DEFAULT_PRODUCTION_GRACE_S,
    ) -> None:
        self._store = store
        self._bus = bus
        # An accept here is a claim a dispatcher still has to slice for: it gets the same
        # lease as a claim the dispatcher applies itself, or slow slicing is blamed on the machine.
        self._claim_lease_s = claim_lease_s(lease_s, production_grace_s)
        self._clock = clock

    def answer_offer(
        self, agent: str, machine: str, task_id: str, offer_no: int, accept: bool, reason: str = ""
    ) -> None:
        """Apply a maker's answer as if their agent had sent it; a stale offer changes nothing."""
        machine_id = hub_machine_id(agent, machine)
        event: ev.TaskEvent
        if accept:
            event = ev.TaskAccepted(
                machine_id=machine_id,
                offer_no=offer_no,
                event_id=new_id(),
                lease_s=self._claim_lease_s,
            )
        else:
            event = ev.TaskDeclined(
                machine_id=machine_id, offer_no=offer_no, event_id=new_id(), reason=reason[:500]
            )
        outcome = self._store.apply_event(task_id, event, self._clock())
        log.info("offer %s/%d answered on the web (%s): %s", task_id, offer_no, machine_id, outcome)

    def control_task(self, task_id: str, pause: bool) -> None:
        """Pause or resume a running task on its machine; Conflict when it is not running."""
        task = self._store.tasks.get(task_id)
        if task.state is not TaskState.RUNNING or not task.machine_id:
            action = "pause" if pause else "resume"
            raise Conflict(f"cannot {action} task {task_id}: it is {task.state.value}, not running")
        command = msg.TaskPause if pause else msg.TaskResume
        self._send(task.machine_id, command, task_id, task.offer_no)

    def configure_machine(
        self,
        machine_id: str,
        material: str,
        materials: tuple[str, ...],
        max_task_hours: float | None,
        auto_accept: bool,
        windows: tuple[str, ...],
    ) -> bool:
        """Send ``machine.configure`` to the machine's agent; True if the broker connection is
        up now (else QoS 1 queues it). InvalidInput for a value the message cannot carry."""
        agent, machine = split_machine_id(machine_id)
        command = msg.MachineConfigure(machine=machine, material=material, materials=materials,
                                       max_task_hours=max_task_hours, auto_accept=auto_accept,
                                       windows=windows)  # fmt: skip
        msg.encode(command)  # checked before sending, so the API answers 400
        self._bus.publish(topics.agent_commands(agent), command)
        return self._bus.connected

    def cancel_job(self, job_id: str, reason: str) -> None:
        """Cancel every unfinished task of a job (one transaction), then tell the machines
        that held them."""
        holders = {
            t.task_id: (t.machine_id, t.offer_no)
            for t in self._store.tasks.find(job_id=job_id)
            if t.machine_id and not t.state.is_final
        }
        moved: list[Transition] = self._store.jobs.cancel(job_id, self._clock(), reason)
        for t in moved:
            machine_id, offer_no = holders.get(t.task.task_id, (None, 0))
            if machine_id:
                self._send(machine_id, msg.TaskCancel, t.task.task_id, offer_no)

    def _send(
        self, machine_id: str, command: type[msg.TaskCommand], task_id: str, offer_no: int
    ) -> None:
        agent, machine = split_machine_id(machine_id)
        if agent and machine and offer_no >= 1:
            self._bus.publish(
                topics.agent_commands(agent),
                command(machine=machine, task_id=task_id, attempt=offer_no),
            )
