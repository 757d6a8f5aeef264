"""A dispatcher on SQLite in tmp with an ``InMemoryBus`` and a clock the test moves: the
support of the dispatcher's unit tests (no broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fabnet.bus import messages as m
from fabnet.bus.client import DeliveryTag
from fabnet.bus.topics import Topic, TopicKind
from fabnet.core.credits import Terms
from fabnet.hub.artifacts import ArtifactStore
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch import Dispatcher, InMemoryBus
from fabnet.hub.metrics import NULL_METRICS, HubMetrics
from fabnet.hub.service import HubService, JobRequest
from fabnet.store import Store

AGENT = "ada"
LEASE_S = 120.0
OFFER_S = 60.0
GRACE_S = 30.0


class Clock:
    """Now, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    store: Store
    bus: InMemoryBus
    clock: Clock
    dispatcher: Dispatcher
    service: HubService
    artifacts: ArtifactStore
    tags: list[DeliveryTag] = field(default_factory=list)

    def settle(self) -> None:
        """Wait until the dispatcher has done everything handed to it so far."""
        done = threading.Event()
        self.dispatcher.submit(done.set)
        assert done.wait(30), "dispatcher did not get through its inbox"

    def tick(self) -> None:
        self.dispatcher.tick()
        self.settle()

    def send(self, message: m.Message, machine: str = "m1") -> DeliveryTag:
        """Deliver an agent's message as a manually acked delivery; returns its tag."""
        kind = TopicKind.EVENTS if isinstance(message, m.TaskEvent) else TopicKind.MACHINE_STATUS
        tag = DeliveryTag(mid=len(self.tags) + 1, qos=1, session=1)
        self.tags.append(tag)
        self.dispatcher.on_message(Topic(kind, AGENT, machine), message, tag)
        self.settle()
        return tag

    def status(self, machine: str = "m1", state: m.MachineState = m.MachineState.IDLE) -> None:
        self.send(machine_status(machine, state), machine)

    def submit(self, quantity: int = 1) -> str:
        request = JobRequest(design="cube-xyz-20mm", quantity=quantity, material="PLA")
        return self.service.submit(request).spec.job_id

    def sent(self, kind: type[m.Message]) -> list[m.Message]:
        return self.bus.sent(kind)

    def wait_sent(self, kind: type[m.Message], n: int = 1) -> list[m.Message]:
        wait_until(lambda: len(self.sent(kind)) >= n, f"{n} {kind.__name__}")
        return self.sent(kind)


def machine_status(machine: str, state: m.MachineState = m.MachineState.IDLE) -> m.MachineStatus:
    caps = m.Capabilities(
        profile="prusa_mk3s",
        kind=m.MachineKind.FDM,
        volume_mm=m.Xyz(x=250.0, y=210.0, z=210.0),
        nozzle_mm=0.4,
        materials=("PLA",),
    )
    return m.MachineStatus(
        machine=machine, state=state, capabilities=caps, materials_loaded=("PLA",)
    )


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def make_rig(
    tmp_path: Path,
    url: str | None = None,
    metrics: HubMetrics = NULL_METRICS,
    economy_terms: Terms | None = None,
) -> Iterator[Rig]:
    store = Store(url or f"sqlite:///{tmp_path / 'hub' / 'hub.db'}")
    clock = Clock()
    designs = DesignCatalog.for_hub(store, tmp_path / "hub")
    designs.register_library(clock.now)
    artifacts = ArtifactStore(tmp_path / "hub" / "artifacts")
    bus = InMemoryBus()
    dispatcher = Dispatcher(store, bus, designs, artifacts, "http://hub.test", lease_s=LEASE_S,
                            offer_timeout_s=OFFER_S, clock=clock,
                            production_grace_s=GRACE_S, metrics=metrics,
                            economy_terms=economy_terms)  # fmt: skip
    service = HubService(store, designs, dispatcher.cancel_job, clock=clock)
    dispatcher.start()
    try:
        yield Rig(store, bus, clock, dispatcher, service, artifacts)
    finally:
        dispatcher.stop()
        artifacts.close()
        store.close()
