"""Giving work back to the hub: the safe stop (cancel the running job, hand back its task and any
accepted one, go offline) and draining (finish the running task, decline and hand back new ones).
"""

from __future__ import annotations

import logging
import threading

from fabnet.agent import reports
from fabnet.agent.offers import OfferDesk
from fabnet.agent.outbox import Outbox
from fabnet.agent.reports import event_for
from fabnet.agent.station import Station
from fabnet.bus.messages import MachineState, TaskAssign, TaskDeclined, TaskOffer

log = logging.getLogger(__name__)

STOP_S = 90.0  # a cancel may lift Z and wait for the firmware's buffers (marlin: up to 60 s)
DRAINING = "the agent is draining: it finishes its running tasks and takes no new ones"


class HandBack:
    """Hands tasks back with ``reports.released``, which the hub requeues at once without
    counting an attempt: the task did not fail, this machine only stopped taking it. Only the
    machine's worker thread calls it; ``drained`` may be read from any thread."""

    def __init__(self, station: Station, desk: OfferDesk, outbox: Outbox, events: str) -> None:
        self._station = station
        self._desk = desk
        self._out = outbox
        self._events = events
        self.draining = False
        self.drained = threading.Event()

    def start_draining(self) -> None:
        """Take no new task from now on; an accepted one not started yet goes back at once."""
        self.draining = True
        self.release_hold(DRAINING)
        log.info("machine %s: draining", self._station.machine_id)

    def finished_draining(self) -> bool:
        """True once draining with no task running: the machine is then announced offline (no
        more offers) and ``drained`` is set."""
        if not self.draining or self._station.job is not None:
            return False
        self._station.set_state(MachineState.OFFLINE)  # no more offers; nothing left to finish
        self.drained.set()
        return True

    def decline(self, offer: TaskOffer) -> None:
        """Answer an offer that arrives while draining."""
        self._out.publish(self._events, event_for(TaskDeclined, offer, reason=DRAINING))

    def release_assign(self, assign: TaskAssign) -> None:
        """Hand back a task assigned while draining (the offer was accepted before)."""
        self._desk.assigned(assign.task_id)
        machine_id = self._station.machine_id
        event = reports.released(machine_id, assign.task_id, assign.attempt, DRAINING)
        self._out.publish_event(self._events, event)

    def release_hold(self, why: str) -> None:
        """Hand back an accepted offer whose task has not started here."""
        hold = self._desk.hold
        if hold is not None:
            self._desk.withdraw(hold.task_id)
            event = reports.released(self._station.machine_id, hold.task_id, hold.attempt, why)
            self._out.publish_event(self._events, event)

    def shutdown(self) -> None:
        """The safe stop: cancel the running job (heaters and spindle off) and hand its task
        back, hand back an accepted task, announce the machine offline and disconnect it."""
        station = self._station
        job = station.job
        if job is not None:
            why = "the agent stopped; the job was cancelled and the machine made safe"
            failure = station.cancel()
            if failure:
                why = f"the agent stopped; cancelling the job failed: {failure}"
            self._out.publish_event(
                self._events, reports.released(station.machine_id, job.task_id, job.attempt, why)
            )
            log.info("machine %s: task %s handed back: %s", station.machine_id, job.task_id, why)
            station.end_job()
        self.release_hold("the agent stopped before the task started")
        station.set_state(MachineState.OFFLINE)
        station.disconnect()
