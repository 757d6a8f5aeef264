"""The agent process: one broker connection (with its Last Will), one runner per machine, the
journal of task events (kept until the hub acknowledges them) and the pending offers, wired
together; ``run_agent`` runs it until SIGINT or SIGTERM.

A stop leaves every machine safe: jobs cancelled (heaters and spindle off), their tasks
handed back to the hub, which requeues them at once; those events are delivered before the
bus disconnects, or kept in the journal for the next start. With ``drain`` the first signal
lets running tasks finish and takes no new ones; a second signal stops at once, safely.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from fabnet import __version__
from fabnet.agent.artifacts import FetchSettings
from fabnet.agent.journal import Journal
from fabnet.agent.outbox import Outbox
from fabnet.agent.overrides import OVERRIDES_FILE, Overrides, resolve_material
from fabnet.agent.pending import PendingOffer, PendingOffers
from fabnet.agent.policy import parse_windows
from fabnet.agent.runner import STOP_S, MachineRunner
from fabnet.agent.setup import MachineSetup
from fabnet.bus import topics
from fabnet.bus.client import BusClient, BusSettings
from fabnet.bus.messages import (
    AgentState,
    AgentStatus,
    EventsAck,
    MachineCommand,
    Message,
    TaskCommand,
)
from fabnet.bus.topics import Topic
from fabnet.config import AgentConfig, MachineConfig
from fabnet.drivers.base import Driver
from fabnet.drivers.registry import make_machine_driver
from fabnet.errors import ConfigError, InvalidInput, NotFound
from fabnet.profiles import load_profile

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
PENDING_FILE = "pending_offers.json"
WORK_DIR = "work"


def machine_setup(
    config: AgentConfig, machine: MachineConfig, fetch: FetchSettings
) -> MachineSetup:
    """Resolve one machine's profile, material and windows; ConfigError naming what is wrong."""
    try:
        topics.check_id(machine.machine_id, "machine id")
        profile = load_profile(machine.profile)
        material = resolve_material(profile, machine.material)
    except (InvalidInput, KeyError) as exc:
        raise ConfigError(f"machine {machine.machine_id}: {exc}") from None
    return MachineSetup(
        agent_id=config.agent_id,
        config=machine,
        profile=profile,
        material=material,
        windows=parse_windows(machine.policy, machine.machine_id),
        work_dir=config.data_dir / WORK_DIR / machine.machine_id,
        hub_url=config.hub_url,
        fetch=fetch,
    )


def build_driver(machine: MachineConfig) -> Driver:
    """The machine's driver from its ``driver`` name and ``driver_options``."""
    try:
        return make_machine_driver(
            machine.driver, machine.driver_options, load_profile(machine.profile)
        )
    except (InvalidInput, TypeError) as exc:
        raise ConfigError(f"machine {machine.machine_id}: driver_options: {exc}") from None


class Agent:
    """One maker's agent. ``start`` connects and starts the machines; ``stop`` ends them and
    publishes the agent offline. ``drivers`` replaces the configured drivers (tests, demo)."""

    def __init__(
        self,
        config: AgentConfig,
        drivers: dict[str, Driver] | None = None,
        fetch: FetchSettings | None = None,
    ) -> None:
        self.config = config
        self.agent_id = topics.check_id(config.agent_id, "agent id")
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # tokens live here
        self.overrides = Overrides(config.data_dir / OVERRIDES_FILE)
        machines = [self.overrides.apply(m) for m in config.machines]  # pushed by the hub
        setups = [machine_setup(config, m, fetch or FetchSettings()) for m in machines]
        self._status_topic = topics.agent_status(self.agent_id)
        machine_ids = tuple(s.config.machine_id for s in setups)
        self._offline = AgentStatus(
            state=AgentState.OFFLINE, version=__version__, machines=machine_ids
        )
        self._online = AgentStatus(
            state=AgentState.ONLINE, version=__version__, machines=machine_ids
        )
        b = config.broker
        # The broker binds an agent's client id to its username (issue 13): use that one.
        settings = BusSettings.from_broker(b, b.username)
        self.bus = BusClient(settings, will=(self._status_topic, self._offline))
        self.journal = Journal(config.data_dir / JOURNAL_FILE)
        self.outbox = Outbox(self.bus, self.journal)
        self.pending = PendingOffers(config.data_dir / PENDING_FILE, self.agent_id)
        drivers = drivers or {}
        self.runners: dict[str, MachineRunner] = {
            s.config.machine_id: MachineRunner(
                s,
                drivers.get(s.config.machine_id) or build_driver(s.config),
                self.outbox,
                self.pending,
                overrides=self.overrides,
            )
            for s in setups
        }
        self._dropped = 0

    def start(self) -> None:
        """Subscribe, connect in the background, announce the agent, start every machine."""
        self.bus.subscribe(topics.agent_commands(self.agent_id), self._on_command)
        self.bus.start()
        self.bus.publish_status(self._status_topic, self._online)
        self.outbox.start()
        for runner in self.runners.values():
            runner.start()
        log.info("agent %s started with %d machine(s)", self.agent_id, len(self.runners))

    def stop(self, timeout_s: float = STOP_S, flush_timeout_s: float = 5.0) -> None:
        """Make every machine safe and hand its task back (all machines at once, each within
        ``timeout_s``), deliver those events (up to ``flush_timeout_s``; the journal keeps
        what the hub did not acknowledge), announce the agent offline and disconnect."""
        for runner in self.runners.values():
            runner.request_stop()
        deadline = time.monotonic() + timeout_s
        for runner in self.runners.values():
            runner.join(max(0.0, deadline - time.monotonic()))
        if not self.outbox.flush(flush_timeout_s):
            log.warning("agent %s: %d event(s) not acknowledged; they are sent at the next start",
                        self.agent_id, self.outbox.unconfirmed())  # fmt: skip
        self.outbox.stop()
        self.bus.publish_status(self._status_topic, self._offline.restamped())
        self.bus.stop(flush_timeout_s=timeout_s)
        log.info("agent %s stopped", self.agent_id)

    def drain(self) -> None:
        """Let running tasks finish and take no new ones; see ``drained``."""
        for runner in self.runners.values():
            runner.drain()

    @property
    def drained(self) -> bool:
        """True once no machine of this agent runs a task after ``drain``."""
        return all(runner.drained for runner in self.runners.values())

    def _on_command(self, topic: Topic, msg: Message) -> None:
        """paho's thread: route to the machine's worker, never block, never raise."""
        if isinstance(msg, EventsAck):  # the hub committed these events: forget them
            self.outbox.acknowledged(msg.ids)
            return
        machine = msg.machine if isinstance(msg, TaskCommand | MachineCommand) else None
        runner = self.runners.get(machine) if machine is not None else None
        if runner is None:
            self._dropped += 1
            log.warning("dropped %s %s for machine %r: not one of ours", msg.TYPE, msg.id, machine)
            return
        runner.submit(msg)

    @property
    def dropped_commands(self) -> int:
        """Commands dropped because they named a machine this agent does not have."""
        return self._dropped

    def pending_offers(self) -> list[PendingOffer]:
        """Offers waiting for the maker's answer, oldest first."""
        return self.pending.all()

    def decide(self, machine_id: str, task_id: str, accept: bool) -> None:
        """Answer a pending offer. Raises NotFound for an unknown machine or no such offer."""
        runner = self.runners.get(machine_id)
        if runner is None:
            raise NotFound(f"agent {self.agent_id} has no machine {machine_id!r}")
        runner.decide(task_id, accept)

    def reset_machine(self, machine_id: str) -> None:
        """Reconnect a machine's driver after an error. Raises NotFound for an unknown one."""
        runner = self.runners.get(machine_id)
        if runner is None:
            raise NotFound(f"agent {self.agent_id} has no machine {machine_id!r}")
        runner.reset()


def run_agent(config: AgentConfig, connect_timeout_s: float = 10.0, drain: bool = False) -> None:
    """Run an agent until SIGINT or SIGTERM (call from the main thread), then stop it safely;
    with ``drain``, the first signal drains the machines and a second one stops at once."""
    agent = Agent(config)
    signals = [threading.Event(), threading.Event()]  # the first and the second signal

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nth = 1 if signals[0].is_set() else 0
        signals[nth].set()
        if drain and nth == 0:
            log.info("signal %d: draining (a second signal stops now, machines made safe)",
                     signum)  # fmt: skip
        else:
            log.info("signal %d: stopping; machines are made safe, tasks handed back", signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    agent.start()
    try:
        if not agent.bus.wait_connected(connect_timeout_s):
            log.warning("agent %s: broker %s:%d not reachable yet (%s); retrying in the background",
                        agent.agent_id, config.broker.host, config.broker.port,
                        agent.bus.last_error or "no answer")  # fmt: skip
        signals[0].wait()
        if drain:
            agent.drain()
            while not (signals[1].wait(0.5) or agent.drained):
                pass
    finally:
        agent.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
