"""Watching the task a machine runs: polling its driver, and reporting progress, telemetry and
the task's end (completed or failed) to the hub.
"""

from __future__ import annotations

import logging

from fabnet.agent import reports
from fabnet.agent.outbox import Outbox
from fabnet.agent.station import RunningJob, Station
from fabnet.bus import topics
from fabnet.bus.messages import FailureCause, MachineState, TaskCompleted, TaskFailed
from fabnet.drivers.base import DriverState, Status

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
TELEMETRY_EVERY_S = 2.0
IDLE_TELEMETRY_EVERY_S = 10.0


class JobWatch:
    """Turns what the driver reports into events, at a bounded rate so a fast poll does not
    flood the broker. Only the machine's worker thread calls it."""

    def __init__(self, agent_id: str, station: Station, outbox: Outbox, events: str) -> None:
        self._station = station
        self._out = outbox
        self._events = events
        self._telemetry_topic = topics.machine_telemetry(agent_id, station.machine_id)
        self._last_telemetry = 0.0  # monotonic s

    def idle(self, now: float) -> None:
        """Between tasks: telemetry now and then, so the dashboard shows temperatures."""
        if now - self._last_telemetry >= IDLE_TELEMETRY_EVERY_S:
            self._send_telemetry(self._station.driver.status(), now)

    def poll(self, job: RunningJob, now: float) -> None:
        """Report the running job's progress, or its end once the driver says it ended."""
        station = self._station
        status = station.driver.status()
        if status.state is DriverState.DONE:
            self._complete(job, status, now)
        elif status.state is DriverState.ERROR:
            error = status.error
            reason = error.message if error else "machine reported an error"
            cause = reports.failure_cause(error, status.state)
            self._fail_job(job, reason, error.raw if error else None, MachineState.ERROR, cause)
        elif status.state in (DriverState.IDLE, DriverState.DISCONNECTED):
            reason = f"machine went {status.state.value} before the task finished"
            cause = reports.failure_cause(status.error, status.state)
            self._fail_job(job, reason, None, station.driver_state(), cause)
        else:
            paused = status.state is DriverState.PAUSED
            station.set_state(MachineState.PAUSED if paused else MachineState.BUSY)
            if now - job.last_progress >= PROGRESS_EVERY_S:
                job.last_progress = now
                event = reports.progress(station.machine_id, job.task_id, job.attempt, status,
                                         job.prepared.lines_total)  # fmt: skip
                self._out.publish(self._events, event)
            if now - self._last_telemetry >= TELEMETRY_EVERY_S:
                self._send_telemetry(status, now)

    def _send_telemetry(self, status: Status, now: float) -> None:
        self._last_telemetry = now
        msg = reports.telemetry(self._station.machine_id, self._station.busy_with(), status)
        self._out.publish(self._telemetry_topic, msg, qos=0)

    def _complete(self, job: RunningJob, status: Status, now: float) -> None:
        station = self._station
        machine_s = status.progress.elapsed_s or (now - job.started)
        event = TaskCompleted(
            machine=station.machine_id,
            task_id=job.task_id,
            attempt=job.attempt,
            grams=job.prepared.grams,
            machine_s=machine_s,
            sha256=job.prepared.sha256,
        )
        self._out.publish_event(self._events, event)
        log.info("machine %s: task %s completed (%.1f g, %.1f s)", station.machine_id,
                 job.task_id, event.grams, machine_s)  # fmt: skip
        station.end_job()
        station.set_state(MachineState.IDLE)

    def _fail_job(
        self,
        job: RunningJob,
        reason: str,
        raw: str | None,
        state: MachineState,
        cause: FailureCause,
    ) -> None:
        station = self._station
        event = TaskFailed(
            machine=station.machine_id,
            task_id=job.task_id,
            attempt=job.attempt,
            reason=reports.clip(reason),
            raw=reports.clip(raw) if raw else None,
            cause=cause,
        )
        self._out.publish_event(self._events, event)
        log.warning("machine %s: task %s failed (%s): %s (%s)", station.machine_id,
                    job.task_id, cause.value, reason, raw)  # fmt: skip
        station.end_job()
        station.set_state(state)
