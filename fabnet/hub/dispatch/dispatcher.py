"""The dispatcher: the one place the hub changes task and machine state.

Bus handlers (paho's thread), the scheduler and the API only put items into the ``Inbox``; its
one worker thread drains them in batches, so there is exactly one writer of hub state in the
process. The parts: ``AgentEvents`` (statuses, telemetry, task events in one transaction per
batch), ``Offering`` (ticks and offer rounds), ``Production`` (G-code on a pool, assign,
recovery of stranded claims), ``Commands`` (the API's requests), all behind ``BusPort``.

Exactly once, hub side: a manually acked message (``BusClient(manual_ack=True)``) is acked only
after the transaction that applied it committed, or once it was refused for good; then each
agent gets an ``events.ack`` naming its moving events, so it stops re-sending them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from fabnet.bus import messages as msg
from fabnet.bus.client import DeliveryTag
from fabnet.bus.drops import DropLog
from fabnet.bus.topics import Topic
from fabnet.core.credits import Terms
from fabnet.errors import FabnetError
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch.agent_events import AgentEvent, AgentEvents
from fabnet.hub.dispatch.commands import Commands
from fabnet.hub.dispatch.context import DispatchContext, DispatchSettings
from fabnet.hub.dispatch.inbox import DEFAULT_MAX_BATCH, Inbox, Incoming, Work
from fabnet.hub.dispatch.offering import Offering
from fabnet.hub.dispatch.port import BusPort
from fabnet.hub.dispatch.production import Produced, Production
from fabnet.hub.holding import DEFAULT_MAX_CONSECUTIVE_FAILURES
from fabnet.hub.metrics import NULL_METRICS, HubMetrics
from fabnet.store import Store

log = logging.getLogger("fabnet.hub.dispatcher")

DEFAULT_MAX_MACHINES_PER_AGENT = 64
DEFAULT_PRODUCTION_GRACE_S = 30.0
APPLY_RETRIES = 5  # a batch the database refused is tried again this often, backing off
APPLY_BACKOFF_S = 0.2

Item = Incoming | Produced | Work


class Dispatcher:
    """Applies agents' messages and the scheduler's ticks to the store, and sends commands."""

    def __init__(
        self,
        store: Store,
        bus: BusPort,
        designs: DesignCatalog,
        artifacts: ArtifactStore,
        public_url: str,
        lease_s: float,
        offer_timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_machines_per_agent: int = DEFAULT_MAX_MACHINES_PER_AGENT,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        *,
        metrics: HubMetrics = NULL_METRICS,
        production_grace_s: float = DEFAULT_PRODUCTION_GRACE_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        economy_terms: Terms | None = None,
    ) -> None:
        settings = DispatchSettings(
            public_url=public_url.rstrip("/"),
            lease_s=lease_s,
            offer_s=offer_timeout_s,
            max_machines_per_agent=max_machines_per_agent,
            production_grace_s=production_grace_s,
            economy_terms=economy_terms,
        )
        self._ctx = DispatchContext(
            store, bus, designs, artifacts, settings, clock, metrics, max_consecutive_failures
        )
        self._inbox: Inbox[Item] = Inbox(self._process, max_batch)
        self._production = Production(self._ctx, self.submit, self._inbox.put)
        self._events = AgentEvents(self._ctx, self._production)
        self._offering = Offering(self._ctx)
        self._commands = Commands(self._ctx, self.submit, self._events.apply)
        self._stopping = False

    @property
    def drops(self) -> DropLog:
        """Agents' messages refused here, per reason."""
        return self._ctx.drops

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._ctx.load_machines()
        self._inbox.start()

    def stop(self) -> None:
        self._stopping = True
        self._inbox.stop()
        self._production.stop()

    def submit(self, work: Work) -> None:
        """Run ``work`` on the dispatcher thread."""
        self._inbox.put(work)

    # -- entry points (other threads: hand over, never block) -------------------------------

    def on_message(
        self, topic: Topic, message: msg.Message, tag: DeliveryTag | None = None
    ) -> None:
        """A bus handler for ``subscribe`` or ``subscribe_acked``: the tag is acked once the
        message is applied (or refused for good)."""
        self._inbox.put(Incoming(topic, message, tag))

    def tick(self) -> None:
        """Scheduler entry point: sweep leases and offers, recover claims, offer queued work."""
        self.submit(self._tick)

    # -- the API's commands -----------------------------------------------------------------

    def control_task(self, task_id: str, pause: bool) -> None:
        """See ``Commands.control_task``."""
        self._commands.control_task(task_id, pause)

    def configure_machine(
        self,
        machine_id: str,
        material: str,
        materials: tuple[str, ...],
        max_task_hours: float | None,
        auto_accept: bool,
        windows: tuple[str, ...],
    ) -> bool:
        """See ``Commands.configure_machine``."""
        return self._commands.configure_machine(
            machine_id, material, materials, max_task_hours, auto_accept, windows
        )

    def cancel_job(self, job_id: str, reason: str) -> None:
        """See ``Commands.cancel_job``."""
        self._commands.cancel_job(job_id, reason)

    def answer_offer(
        self, agent: str, machine: str, task_id: str, offer_no: int, accept: bool, reason: str = ""
    ) -> None:
        """See ``Commands.answer_offer``."""
        self._commands.answer_offer(agent, machine, task_id, offer_no, accept, reason)

    # -- the worker -------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._ctx.clock()
        due = self._offering.tick(now)
        self._production.recover(now, due.claimed_since)

    def _process(self, batch: list[Item]) -> None:
        """One drain of the inbox. Task events and produced G-code are applied together in
        one transaction; statuses that only report a machine's state, and telemetry, wait for
        that commit; anything else (an agent or machine going offline, the scheduler's and the
        API's steps) first flushes what came before it, so it sees it applied."""
        events: list[Incoming] = []
        produced: list[Produced] = []
        later: list[Incoming] = []
        for item in batch:
            if isinstance(item, Produced):
                produced.append(item)
            elif isinstance(item, Incoming) and self._is_task_event(item):
                events.append(item)
            elif isinstance(item, Incoming) and self._commutes(item):
                later.append(item)
            else:
                self._flush(events, produced, later)
                events, produced, later = [], [], []
                if isinstance(item, Incoming):
                    self._handle_other(item)
                else:
                    self._run(item)
        self._flush(events, produced, later)
        if self._ctx.offer_wanted:
            self._run(lambda: self._offering.offer_round(self._ctx.clock()))

    def _flush(
        self, events: list[Incoming], produced: list[Produced], later: list[Incoming]
    ) -> None:
        self._apply_events(events, produced)
        for item in later:
            self._handle_other(item)

    @staticmethod
    def _is_task_event(item: Incoming) -> bool:
        return item.topic.agent is not None and isinstance(item.message, msg.TaskEvent)

    @staticmethod
    def _commutes(item: Incoming) -> bool:
        """True for what may be applied after the task events of its drain: telemetry and a
        machine's status other than offline (which requeues the machine's tasks)."""
        message = item.message
        if isinstance(message, msg.MachineTelemetry):
            return True
        return (
            isinstance(message, msg.MachineStatus) and message.state is not msg.MachineState.OFFLINE
        )

    def _run(self, work: Work) -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - one step of the worker: log and go on
            log.exception("dispatcher step failed")

    def _handle_other(self, item: Incoming) -> None:
        try:
            self._events.on_other(item.topic, item.message, self._ctx.clock())
        except FabnetError as exc:  # an agent's bad input (unknown machine, bad figures)
            message = item.message
            self.drops.drop(
                type(exc).__name__, str(item.topic), f"{message.TYPE} {message.id}: {exc}"
            )
        except SQLAlchemyError:
            log.exception("database error on %s %s: not acknowledged", item.message.TYPE,
                          item.message.id)  # fmt: skip
            return  # the broker re-delivers it on the next connect
        except Exception:  # noqa: BLE001 - a bug; acked, or it would come back forever
            log.exception("dispatcher failed on %s %s", item.message.TYPE, item.message.id)
        self._ack([item])

    def _apply_events(self, items: list[Incoming], produced: list[Produced]) -> None:
        """Apply task events and assignments in one transaction (retried while the database
        refuses), then acknowledge the events to the broker and to their agents."""
        if not items and not produced:
            return
        batch = [
            AgentEvent(i.topic.agent or "", i.message)
            for i in items
            if isinstance(i.message, msg.TaskEvent)
        ]
        for attempt in range(APPLY_RETRIES):
            try:
                self._events.apply(batch, self._ctx.clock(), produced)
                break
            except SQLAlchemyError:
                if attempt + 1 == APPLY_RETRIES or self._stopping:
                    log.exception("%d task events not applied: left to the broker and the "
                                  "agents to send again", len(batch))  # fmt: skip
                    for made in produced:  # left claimed: recovered after the grace period
                        self._production.forget(made.task_id, made.offer_no)
                    return
                log.warning("database refused %d task events; retrying", len(batch))
                time.sleep(APPLY_BACKOFF_S * 2**attempt)
        self._ack(items)
        self._events.acknowledge(batch)

    def _ack(self, items: list[Incoming]) -> None:
        for item in items:
            if item.tag is not None:
                self._ctx.bus.ack(item.tag)
