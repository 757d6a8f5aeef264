"""Hub-side commands from the API: pause, resume, configure a machine, cancel a job, and a
maker's answer to an offer. Each runs on the dispatcher's thread (handed over through the
inbox); the callers that need the result wait for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from fabnet.bus import messages as msg
from fabnet.core.states import TaskState
from fabnet.core.tasks import Ignored, Outcome, Transition
from fabnet.errors import Conflict, FabnetError
from fabnet.hub.dispatch.agent_events import AgentEvent
from fabnet.hub.dispatch.context import DispatchContext
from fabnet.hub.machines import split_machine_id

Work = Callable[[], None]
Apply = Callable[[list[AgentEvent], datetime], list[Outcome | FabnetError]]
DECISION_WAIT_S = 10.0
CANCEL_WAIT_S = 30.0


class Commands:
    """What the API asks of the dispatcher."""

    def __init__(self, ctx: DispatchContext, submit: Callable[[Work], None], apply: Apply) -> None:
        self._ctx = ctx
        self._submit = submit
        self._apply = apply

    def control_task(self, task_id: str, pause: bool) -> None:
        """Pause or resume a running task on its machine; Conflict when it is not running."""
        task = self._ctx.store.tasks.get(task_id)
        if task.state is not TaskState.RUNNING or not task.machine_id:
            action = "pause" if pause else "resume"
            raise Conflict(f"cannot {action} task {task_id}: it is {task.state.value}, not running")
        command = msg.TaskPause if pause else msg.TaskResume
        machine_id = task.machine_id
        self._submit(
            lambda: self._ctx.send_task_command(machine_id, command, task_id, task.offer_no)
        )

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
        self._submit(lambda: self._ctx.send_to_agent(agent, command))
        return self._ctx.bus.connected

    def cancel_job(self, job_id: str, reason: str) -> None:
        """Cancel every unfinished task of a job and tell the machines holding them."""
        ctx = self._ctx

        def step() -> None:
            holders = {
                t.task_id: (t.machine_id, t.offer_no)
                for t in ctx.store.tasks.find(job_id=job_id)
                if t.machine_id and not t.state.is_final
            }
            ctx.store.jobs.cancel(job_id, ctx.clock(), reason)
            for task_id, (machine_id, offer_no) in holders.items():
                if machine_id:
                    ctx.send_task_command(machine_id, msg.TaskCancel, task_id, offer_no)
                    ctx.refresh_machine(machine_id)

        self._run(step, CANCEL_WAIT_S)

    def answer_offer(
        self,
        agent: str,
        machine: str,
        task_id: str,
        offer_no: int,
        accept: bool,
        reason: str = "",
    ) -> None:
        """Apply a maker's accept or decline of offer ``offer_no`` of ``task_id`` on
        ``agent``'s ``machine`` as if the agent had sent it (the hub then produces or re-offers
        as usual); returns once applied. Raises Conflict if that offer is no longer open (or
        the dispatcher did not get to it in time), NotFound for an unknown task."""
        event: msg.TaskEvent
        if accept:
            event = msg.TaskAccepted(machine=machine, task_id=task_id, attempt=offer_no)
        else:
            reason = reason or "declined"
            event = msg.TaskDeclined(
                machine=machine, task_id=task_id, attempt=offer_no, reason=reason[:500]
            )
        result: list[Outcome | FabnetError] = []

        def step() -> None:
            now = self._ctx.clock()
            result.extend(self._apply([AgentEvent(agent, event, acked=False)], now))

        self._run(step, DECISION_WAIT_S)
        if not result:
            raise Conflict(f"the dispatcher did not apply the answer to task {task_id} in time")
        outcome = result[0]
        if isinstance(outcome, FabnetError):
            raise outcome
        if isinstance(outcome, Ignored):
            raise Conflict(f"offer {offer_no} of task {task_id} is not open: {outcome.detail}")
        assert isinstance(outcome, Transition)

    def _run(self, step: Work, timeout_s: float) -> None:
        """Run ``step`` on the dispatcher's thread and wait for it (at most ``timeout_s``)."""
        done = threading.Event()

        def wrapped() -> None:
            try:
                step()
            finally:
                done.set()

        self._submit(wrapped)
        done.wait(timeout=timeout_s)
