"""What the dispatcher's parts share: the store, the bus, the matcher's machine index and the
helpers that send commands and keep the index in step with the store. Used on the dispatcher's
worker thread only (the production pool hands its results back through the inbox)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fabnet.bus import messages as msg
from fabnet.bus import topics
from fabnet.bus.drops import DropLog
from fabnet.core.credits import Terms
from fabnet.core.jobs import JobSpec
from fabnet.core.matching import MachineIndex
from fabnet.errors import NotFound
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch.port import BusPort
from fabnet.hub.holding import HoldKeeper
from fabnet.hub.machines import split_machine_id
from fabnet.hub.metrics import HubMetrics
from fabnet.store import Store

log = logging.getLogger("fabnet.hub.dispatcher")

JOB_CACHE = 1024  # job specs kept (they never change once submitted)


@dataclass(frozen=True)
class DispatchSettings:
    """The dispatcher's figures: lease and offer lengths (s), the per-agent machine cap, and how
    long a claimed task may wait for its G-code before any dispatcher produces it again."""

    public_url: str
    lease_s: float
    offer_s: float
    max_machines_per_agent: int
    production_grace_s: float
    # The hub's [economy] terms (fee on top of makers' prices) as the budget guard's defaults;
    # terms an operator stored through the API win. None: fabnet's default terms.
    economy_terms: Terms | None = None

    @property
    def claim_lease_s(self) -> float:
        """The lease an accepted offer (a claim) gets: the hub's own time to produce the G-code
        (the grace period after which another dispatcher produces it) on top of a lease. The
        agent can do nothing until ``task.assign``, so a claim that ran out while the hub was
        slicing would be blamed on the machine (a failed attempt, and a hold after three);
        the assign starts a plain lease, so a dead agent is not noticed later for it."""
        return claim_lease_s(self.lease_s, self.production_grace_s)


def claim_lease_s(lease_s: float, production_grace_s: float) -> float:
    """See ``DispatchSettings.claim_lease_s`` (also what an API process's accept should use)."""
    return lease_s + production_grace_s


class DispatchContext:
    """Shared state and helpers of the dispatcher's parts."""

    def __init__(
        self,
        store: Store,
        bus: BusPort,
        designs: DesignCatalog,
        artifacts: ArtifactStore,
        settings: DispatchSettings,
        clock: Callable[[], datetime],
        metrics: HubMetrics,
        max_consecutive_failures: int,
    ) -> None:
        self.store = store
        self.bus = bus
        self.designs = designs
        self.artifacts = artifacts
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.drops = DropLog(log)  # agents' messages refused here, per reason
        self.index = MachineIndex()
        self.holds = HoldKeeper(store, self.send_to_agent, max_consecutive_failures)
        self.offer_wanted = False  # a machine became idle: offer at the end of this batch
        self._jobs: OrderedDict[str, JobSpec] = OrderedDict()

    def load_machines(self) -> None:
        for machine in self.store.catalog.list_machines():
            self.index.upsert(machine)
        self.offer_wanted = len(self.index) > 0

    def send_to_agent(self, agent: str, command: msg.Message) -> None:
        self.bus.publish(topics.agent_commands(agent), command)

    def send_task_command(
        self, machine_id: str, command: type[msg.TaskCommand], task_id: str, offer_no: int
    ) -> None:
        """Send ``task.cancel`` / ``pause`` / ``resume`` for (task, offer) to the machine."""
        agent, machine = split_machine_id(machine_id)
        if not agent or not machine or offer_no < 1:
            return
        self.send_to_agent(agent, command(machine=machine, task_id=task_id, attempt=offer_no))

    def refresh_machine(self, machine_id: str) -> None:
        """Put the machine into the index as stored (state, hold); one that became matchable
        asks for an offer round at the end of the batch."""
        was = self.index.is_available(machine_id)
        try:
            self.index.upsert(self.store.catalog.get_machine(machine_id))
        except NotFound:
            self.index.remove(machine_id)
        if not was and self.index.is_available(machine_id):
            self.offer_wanted = True

    def job_spec(self, job_id: str) -> JobSpec:
        """The job's spec (cached: a spec never changes). Raises NotFound."""
        spec = self._jobs.get(job_id)
        if spec is None:
            spec = self.store.jobs.get(job_id).spec
            self._jobs[job_id] = spec
            if len(self._jobs) > JOB_CACHE:
                self._jobs.popitem(last=False)
        return spec
