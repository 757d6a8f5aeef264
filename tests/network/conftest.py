"""The ``network`` fixture: Mosquitto started for the test, the rest started by the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from network_harness import LEASE_S, SPEED, TEST_MAKERS, Network

from fabnet.bus.broker import MosquittoBroker, free_port
from fabnet.sim.makers import write_network


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    broker_port, http_port = free_port(), free_port()
    files = write_network(
        tmp_path,
        broker_port,
        TEST_MAKERS,
        http_port=http_port,
        speed=SPEED,
        lease_s=LEASE_S,
        offer_timeout_s=5.0,
        sweep_interval_s=0.3,
    )
    broker = MosquittoBroker(tmp_path / "broker", broker_port, users=files.users)
    broker.start()
    net = Network(tmp_path, files, broker, http_port)
    try:
        yield net
    finally:
        net.stop()
