"""The federation tick's own sequencing, over a real store, PeerService and CapacityService
(the peers' URLs lead nowhere, so an advertisement reaches no one and says why): idle without
a confirmed peer; advertise when due and at once to a newly confirmed peer; delegator before
reporter; a failing step logged and the others still run. The delegator and reporter are small
stand-ins written here: the tick only calls ``round()`` on them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fabnet.bus.broker import free_port
from fabnet.config import FederationConfig
from fabnet.errors import InvalidInput
from fabnet.federation.advertise import CapacityService
from fabnet.federation.keys import HubKey
from fabnet.federation.peers import PeerService
from fabnet.federation.tick import FederationTick, RoundStep
from fabnet.store import Store
from fabnet.store.peers import Peers, PeerTerms

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVERY_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Step:
    """A round that notes when it ran (into the shared ``calls``) and can be made to fail."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls
        self.fail = False

    def round(self) -> dict[str, str]:
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        return {"t1": f"{self.name} did it"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    yield store
    store.close()


def add_peer(store: Store, name: str, clock: Clock, *, confirmed: bool = True) -> None:
    """A peer whose URL nobody answers on (a free port, closed)."""
    key = HubKey.generate().public
    Peers(store.db).add(name, f"http://127.0.0.1:{free_port()}", key.text, key.key_id,
                        PeerTerms(), clock())  # fmt: skip
    if confirmed:
        for inbound in (True, False):
            Peers(store.db).record_hello(name, clock(), inbound=inbound)


def make_tick(store: Store, tmp_path: Path, clock: Clock, calls: list[str], *,
              federated: bool = True) -> tuple[FederationTick, Step, Step]:  # fmt: skip
    config = FederationConfig("north", tmp_path / "key.pem") if federated else None
    peers = PeerService(Peers(store.db), config, clock)
    delegator, reporter = Step("delegate", calls), Step("report", calls)
    tick = FederationTick(peers, CapacityService(store, peers, clock), delegator,
                          reporter, clock, advertise_every_s=EVERY_S)  # fmt: skip
    return tick, delegator, reporter


def test_idle_without_a_confirmed_peer(store: Store, tmp_path: Path) -> None:
    clock, calls = Clock(), list[str]()
    tick, _, _ = make_tick(store, tmp_path, clock, calls)
    assert tick.run().idle
    add_peer(store, "south", clock, confirmed=False)
    report = tick.run()
    assert report.idle and report.advertised is None and calls == []
    assert not (tmp_path / "key.pem").exists()  # a hub that does not federate reads no key


def test_advertises_when_due_then_delegates_then_reports(store: Store, tmp_path: Path) -> None:
    clock, calls = Clock(), list[str]()
    tick, _, _ = make_tick(store, tmp_path, clock, calls)
    add_peer(store, "south", clock)
    first = tick.run()
    assert first.advertised is not None and "cannot reach peer south" in first.advertised["south"]
    assert calls == ["delegate", "report"] and not first.failed and not first.idle
    assert first.delegated == {"t1": "delegate did it"} and first.reported == {
        "t1": "report did it"
    }
    clock.advance(EVERY_S / 2)
    second = tick.run()
    assert second.advertised is None  # not due yet
    assert calls == ["delegate", "report"] * 2
    add_peer(store, "west", clock)  # newly confirmed: advertised to at once, and only it
    third = tick.run()
    assert third.advertised is not None and set(third.advertised) == {"west"}
    clock.advance(EVERY_S / 2)
    fourth = tick.run()
    assert fourth.advertised is not None and set(fourth.advertised) == {"south", "west"}


def test_a_failing_step_is_logged_and_the_others_run(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, calls = Clock(), list[str]()
    tick, delegator, reporter = make_tick(store, tmp_path, clock, calls)
    add_peer(store, "south", clock)
    delegator.fail = True
    with caplog.at_level(logging.ERROR, logger="fabnet.federation.tick"):
        report = tick.run()
    assert report.failed == ("delegate",) and calls == ["delegate", "report"]
    assert report.reported == {"t1": "report did it"} and report.advertised is not None
    assert "delegate failed" in caplog.text and "delegate broke" in caplog.text
    delegator.fail, reporter.fail = False, True
    assert tick.run().failed == ("report",)


def test_advertising_failing_does_not_stop_the_rounds(store: Store, tmp_path: Path) -> None:
    """Without [federation] the capacity service has no identity: advertise raises, the
    rounds still run, and the next tick tries to advertise again (it was not done)."""
    clock, calls = Clock(), list[str]()
    tick, _, _ = make_tick(store, tmp_path, clock, calls, federated=False)
    add_peer(store, "south", clock)
    assert tick.run().failed == ("advertise",) and calls == ["delegate", "report"]
    assert tick.run().failed == ("advertise",)


def test_steps_may_be_absent_and_the_period_is_checked(store: Store, tmp_path: Path) -> None:
    clock = Clock()
    peers = PeerService(Peers(store.db), FederationConfig("north", tmp_path / "k.pem"), clock)
    capacities = CapacityService(store, peers, clock)
    add_peer(store, "south", clock)
    only: RoundStep | None = None
    report = FederationTick(peers, capacities, only, only, clock,
                            advertise_every_s=5).run()  # fmt: skip
    assert report.advertised is not None and report.delegated == report.reported == {}
    with pytest.raises(InvalidInput, match="advertise_every_s must be > 0, got 0"):
        FederationTick(peers, capacities, None, None, clock, advertise_every_s=0)
