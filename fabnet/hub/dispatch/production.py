"""Producing G-code for claimed tasks and assigning it. The slicing runs on a small pool; its
result comes back to the dispatcher's thread as an "assign" (or "fail") step. Nothing of it
lives only in memory: a task still ``claimed`` after a grace period that this process is not
producing (its dispatcher died, or an API process applied the accept) is produced again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.core import events as ev
from fabnet.core.ids import peer_named
from fabnet.core.jobs import Quality
from fabnet.core.machines import Machine
from fabnet.core.tasks import Outcome, TaskSnapshot, Transition
from fabnet.errors import FabnetError
from fabnet.hub.artifacts import Artifact
from fabnet.hub.dispatch.context import DispatchContext
from fabnet.hub.machines import split_machine_id

log = logging.getLogger("fabnet.hub.dispatcher")

Work = Callable[[], None]
POOL_WORKERS = 2
RECOVER_EVERY = timedelta(seconds=5)  # how often a tick looks for stranded claims
RECOVER_BATCH = 50


@dataclass(frozen=True)
class Produced:
    """G-code made for (task, offer) on ``machine``: assigned in the dispatcher's next batch."""

    task_id: str
    machine: Machine
    offer_no: int
    artifact: Artifact

    def event(self, lease_s: float) -> ev.TaskAssigned:
        return ev.TaskAssigned(
            machine_id=self.machine.machine_id, offer_no=self.offer_no, lease_s=lease_s
        )


class Production:
    """Produce, assign, fail, and recover stranded claims (dispatcher thread only)."""

    def __init__(
        self,
        ctx: DispatchContext,
        submit: Callable[[Work], None],
        deliver: Callable[[Produced], None],
    ) -> None:
        self._ctx = ctx
        self._submit = submit  # back onto the dispatcher thread
        self._deliver = deliver  # a Produced into the dispatcher's inbox
        # (task id, offer) whose G-code is being made here: per offer, so a task claimed again
        # (its earlier claim ran out meanwhile) is produced for the new claim, not skipped
        self._producing: set[tuple[str, int]] = set()
        self._recovered_at: datetime | None = None
        self._pool = ThreadPoolExecutor(max_workers=POOL_WORKERS, thread_name_prefix="hub-produce")

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def produce(self, task: TaskSnapshot) -> None:
        """Make the G-code of claimed ``task`` for its machine on the pool, then assign it.
        A task held by a peer hub (``peer:<hub>``) is left alone: the peer makes it."""
        ctx = self._ctx
        if (task.task_id, task.offer_no) in self._producing or not task.machine_id:
            return
        if peer_named(task.machine_id) is not None:
            return
        job = ctx.job_spec(task.job_id)
        machine = ctx.index.get(task.machine_id) or ctx.store.catalog.get_machine(task.machine_id)
        entry = ctx.designs.get(job.design_id)
        task_id, offer_no = task.task_id, task.offer_no
        self._producing.add((task_id, offer_no))

        def make() -> None:
            try:
                artifact = ctx.artifacts.produce(
                    entry,
                    machine.profile,
                    job.material,
                    Quality(job.quality),
                    job.parts_per_task,
                    machine.machine_id,
                )
            except FabnetError as exc:
                log.warning("cannot produce task %s for %s: %s", task_id, machine.profile, exc)
                reason = str(exc)
                self._submit(lambda: self._fail(task_id, machine.machine_id, offer_no, reason))
                return
            except Exception:  # noqa: BLE001 - a pool thread's top: the claim is recovered later
                log.exception("producing task %s failed", task_id)
                self._submit(lambda: self._producing.discard((task_id, offer_no)))
                return
            self._deliver(Produced(task_id, machine, offer_no, artifact))

        self._pool.submit(make)

    def forget(self, task_id: str, offer_no: int) -> None:
        """Stop counting (task, offer) as in production here (its assignment was not applied)."""
        self._producing.discard((task_id, offer_no))

    def recover(self, now: datetime, claimed_since: datetime | None) -> None:
        """Produce claims older than the grace period that nobody here is producing;
        ``claimed_since`` is the oldest claim's start (``Tasks.due``): none that old, no look."""
        grace = timedelta(seconds=self._ctx.settings.production_grace_s)
        if claimed_since is None or claimed_since > now - grace:
            return
        if self._recovered_at is not None and now - self._recovered_at < RECOVER_EVERY:
            return
        self._recovered_at = now
        for task in self._ctx.store.tasks.claimed_unassigned(now - grace, RECOVER_BATCH):
            if (task.task_id, task.offer_no) not in self._producing:
                log.info("task %s claimed since before %s without G-code: producing", task.task_id,
                         now - grace)  # fmt: skip
                try:
                    self.produce(task)
                except FabnetError as exc:
                    log.warning("cannot recover task %s: %s", task.task_id, exc)

    def _fail(self, task_id: str, machine_id: str, offer_no: int, reason: str) -> None:
        self._producing.discard((task_id, offer_no))
        ctx = self._ctx
        event = ev.TaskFailed(
            machine_id=machine_id,
            offer_no=offer_no,
            reason=f"hub could not produce G-code: {reason}"[:500],
        )
        moved = ctx.store.apply_event(task_id, event, ctx.clock())
        if isinstance(moved, Transition) and moved.to_state.value == "queued":
            ctx.metrics.requeued(moved.cause.value)
        ctx.send_task_command(machine_id, msg.TaskCancel, task_id, offer_no)
        ctx.refresh_machine(machine_id)

    def assigned(self, produced: Produced, outcome: Outcome | FabnetError) -> None:
        """After the batch that applied ``produced``'s TaskAssigned committed: record the
        file for the task's token and send ``task.assign``."""
        task_id, machine, offer_no = produced.task_id, produced.machine, produced.offer_no
        self._producing.discard((task_id, offer_no))
        ctx = self._ctx
        if not isinstance(outcome, Transition):
            log.info("task %s offer %d no longer claimed by %s; not assigning", task_id, offer_no,
                     machine.machine_id)  # fmt: skip
            return
        token = ctx.artifacts.record_assignment(task_id, offer_no, produced.artifact)
        agent, name = split_machine_id(machine.machine_id)
        command = msg.TaskAssign(
            machine=name,
            task_id=task_id,
            attempt=offer_no,
            url=f"{ctx.settings.public_url}/artifacts/{task_id}/{offer_no}",
            token=token,
            size_bytes=produced.artifact.size_bytes,
            sha256=produced.artifact.sha256,
            profile=machine.profile,
        )
        ctx.bus.publish(topics.agent_commands(agent), command)
