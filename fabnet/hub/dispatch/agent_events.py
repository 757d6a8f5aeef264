"""Agents' messages applied to the store: statuses, machine statuses, telemetry, and task events
— the latter a batch at a time in one transaction, then acknowledged to their agents with
``events.ack`` once committed (the agent keeps re-sending a moving event until then)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fabnet.bus import messages as msg
from fabnet.bus.topics import Topic
from fabnet.core import events as ev
from fabnet.core.states import IgnoreReason, MachineState, TaskState
from fabnet.core.tasks import Ignored, Outcome, Transition
from fabnet.errors import FabnetError, NotFound
from fabnet.hub.dispatch.context import DispatchContext
from fabnet.hub.dispatch.production import Produced, Production
from fabnet.hub.machines import hub_machine_id, machine_from_status
from fabnet.hub.translate import completion_refusal, core_event
from fabnet.store.telemetry import TemperatureSample

log = logging.getLogger("fabnet.hub.dispatcher")


@dataclass(frozen=True)
class AgentEvent:
    """A task event from ``agent``; ``acked`` False for the hub's own (a maker's decision in
    the API), which no agent journals."""

    agent: str
    event: msg.TaskEvent
    acked: bool = True


class AgentEvents:
    """Applies what agents report (dispatcher thread only)."""

    def __init__(self, ctx: DispatchContext, production: Production) -> None:
        self._ctx = ctx
        self._production = production
        self._makers: set[str] = set()  # makers known to exist (a maker is never re-created)

    # -- statuses and telemetry: one transaction each ----------------------------------------

    def on_other(self, topic: Topic, message: msg.Message, now: datetime) -> None:
        """Everything but task events; raises FabnetError for an agent's bad input."""
        agent = topic.agent
        if agent is None:
            log.debug("ignoring %s on %s", message.TYPE, topic)
        elif isinstance(message, msg.AgentStatus):
            self._on_agent_status(agent, message, now)
        elif isinstance(message, msg.MachineStatus):
            self._on_machine_status(agent, message, now)
        elif isinstance(message, msg.MachineTelemetry) and message.task_id is not None:
            t = message
            sample = TemperatureSample(now, t.hotend_c, t.hotend_target_c, t.bed_c, t.bed_target_c)
            machine_id = hub_machine_id(agent, t.machine)
            self._ctx.store.telemetry.record(message.task_id, machine_id, sample)

    def _on_agent_status(self, agent: str, status: msg.AgentStatus, now: datetime) -> None:
        if status.state is msg.AgentState.ONLINE:
            return
        log.info("agent %s went offline: requeueing its work", agent)
        ctx = self._ctx
        for machine in ctx.store.catalog.list_machines(maker_id=agent):
            for moved in ctx.store.tasks.machine_offline(machine.machine_id, now):
                self._requeued(moved)
                log.info("task %s back to %s (machine offline)", moved.task.task_id, moved.to_state)
            ctx.refresh_machine(machine.machine_id)

    def _on_machine_status(self, agent: str, status: msg.MachineStatus, now: datetime) -> None:
        ctx = self._ctx
        if agent not in self._makers:
            try:
                ctx.store.catalog.get_maker(agent)
            except NotFound:
                ctx.store.catalog.add_maker(agent, now, maker_id=agent)
            self._makers.add(agent)
        machine = machine_from_status(agent, status, now)
        if ctx.index.get(machine.machine_id) is None:  # a machine new to this hub: the cap
            known = ctx.store.catalog.list_machines(maker_id=agent)
            cap = ctx.settings.max_machines_per_agent
            if len(known) >= cap and machine.machine_id not in {k.machine_id for k in known}:
                detail = f"{status.machine}: agent has {len(known)} machines, the cap"
                ctx.drops.drop("machine-cap", agent, detail)
                return
        ctx.store.catalog.upsert_machine(machine)
        if machine.state is MachineState.OFFLINE:
            for moved in ctx.store.tasks.machine_offline(machine.machine_id, now):
                self._requeued(moved)
        ctx.refresh_machine(machine.machine_id)  # as stored: with its hold, if any

    # -- task events: a batch per transaction ------------------------------------------------

    def apply(
        self, batch: Sequence[AgentEvent], now: datetime, produced: Sequence[Produced] = ()
    ) -> list[Outcome | FabnetError]:
        """Apply the batch — and the assignments of G-code ``produced`` meanwhile — in one
        transaction and act on the outcomes; the result has one slot per item of ``batch`` (an
        event with no core meaning is ``Ignored``). Raises what the store raises for the whole
        batch (a database error): nothing was committed then."""
        ctx = self._ctx
        results: list[Outcome | FabnetError | None] = [None] * len(batch)
        items: list[tuple[str, ev.TaskEvent]] = []
        slots: list[int] = []  # batch index of each applied item; the others need no more
        for i, item in enumerate(batch):
            event = item.event
            machine_id = hub_machine_id(item.agent, event.machine)
            accepted = isinstance(event, msg.TaskAccepted)
            lease_s = ctx.settings.claim_lease_s if accepted else ctx.settings.lease_s
            core = core_event(event, machine_id, lease_s)
            if core is None:
                results[i] = Ignored(event.id, IgnoreReason.WRONG_STATE, "no task change")
                continue
            if isinstance(event, msg.TaskCompleted):
                refusal = completion_refusal(
                    event, ctx.artifacts.assignment(event.task_id, event.attempt)
                )
                if refusal:  # not credited; the lease runs out if nothing real follows
                    ctx.drops.drop("completion", machine_id, f"task {event.task_id}: {refusal}")
                    results[i] = Ignored(event.id, IgnoreReason.WRONG_STATE, refusal)
                    continue
            items.append((event.task_id, core))
            slots.append(i)
        items += [(p.task_id, p.event(ctx.settings.lease_s)) for p in produced]
        outcomes = ctx.store.apply_events(items, now)
        for slot, outcome in zip(slots, outcomes, strict=False):
            results[slot] = outcome
        for p, outcome in zip(produced, outcomes[len(slots) :], strict=True):
            try:
                self._production.assigned(p, outcome)
            except FabnetError as exc:  # committed; the lease runs out and the task requeues
                log.warning("task %s assigned but not sent: %s", p.task_id, exc)
        done: list[Outcome | FabnetError] = []
        applied = set(slots)
        for i, (item, result) in enumerate(zip(batch, results, strict=True)):
            assert result is not None
            done.append(result)
            if i not in applied:
                continue
            try:
                self._after(item, result, now)
            except FabnetError as exc:  # committed already; what follows it failed
                log.warning("after %s on task %s: %s", item.event.TYPE, item.event.task_id, exc)
        self._observe_done(done, now)
        return done

    def _observe_done(self, results: Sequence[Outcome | FabnetError], now: datetime) -> None:
        """Feed offer->done for the tasks this batch finished: one read of their offers' times
        for the whole batch (the attempt starts at the claim, later than the offer)."""
        finished = [
            r.task.task_id
            for r in results
            if isinstance(r, Transition) and r.to_state is TaskState.DONE and r.completed
        ]
        if not finished:
            return
        for at in self._ctx.store.tasks.offered_at(finished).values():  # done at ``now``
            self._ctx.metrics.task_done(max(0.0, (now - at).total_seconds()))

    def acknowledge(self, batch: Sequence[AgentEvent]) -> None:
        """Tell each agent which of its moving events are committed (after the commit)."""
        ids: dict[str, list[str]] = {}
        for item in batch:
            if item.acked and isinstance(item.event, msg.MOVING_EVENTS):
                ids.setdefault(item.agent, []).append(item.event.id)
        for agent, agent_ids in ids.items():
            unique = list(dict.fromkeys(agent_ids))
            for at in range(0, len(unique), msg.MAX_ACK_IDS):
                chunk = tuple(unique[at : at + msg.MAX_ACK_IDS])
                self._ctx.send_to_agent(agent, msg.EventsAck(ids=chunk))

    def _after(self, item: AgentEvent, result: Outcome | FabnetError, now: datetime) -> None:
        ctx = self._ctx
        event = item.event
        machine_id = hub_machine_id(item.agent, event.machine)
        if isinstance(result, FabnetError):  # an agent's bad input (unknown task, bad figures)
            where = f"agents/{item.agent}/machines/{event.machine}"
            ctx.drops.drop(type(result).__name__, where, f"{event.TYPE} {event.id}: {result}")
            return
        if isinstance(result, Ignored):
            log.debug("event %s on task %s ignored: %s", event.TYPE, event.task_id, result)
            if self._works_on_lost_task(result, event, machine_id):
                # the agent works on something the hub no longer gives it: tell it to stop
                ctx.send_task_command(machine_id, msg.TaskCancel, event.task_id, event.attempt)
            ctx.refresh_machine(machine_id)
            return
        if ctx.holds.after_attempt(result.attempt_ended, now):
            ctx.refresh_machine(machine_id)
        log.info(
            "task %s: %s -> %s (%s)", event.task_id, result.from_state, result.to_state,
            result.cause,
        )  # fmt: skip
        self._count(event, result)
        if isinstance(event, msg.TaskAccepted):
            self._production.produce(result.task)
        elif result.to_state.is_final or result.to_state is TaskState.QUEUED:
            ctx.refresh_machine(machine_id)

    def _count(self, event: msg.TaskEvent, moved: Transition) -> None:
        metrics = self._ctx.metrics
        if isinstance(event, msg.TaskAccepted):
            metrics.offer_answered("accepted")
        elif isinstance(event, msg.TaskDeclined):
            metrics.offer_answered("declined")
        self._requeued(moved)

    def _requeued(self, moved: Transition) -> None:
        if moved.to_state is TaskState.QUEUED and moved.from_state is not TaskState.QUEUED:
            self._ctx.metrics.requeued(moved.cause.value)

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
        task = self._ctx.store.tasks.get(event.task_id)
        finished_here = bool(task.attempts) and task.attempts[-1].machine_id == machine_id
        return not (task.state is TaskState.DONE and finished_here)
