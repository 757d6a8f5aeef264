"""Two hubs as real processes (issue 12, "What it must show"): hub-a (SQLite, one FDM printer)
and hub-b (PostgreSQL, one CNC router), each from the hub.toml ``fabnet init hub`` wrote, with
its own Mosquitto and a ``fabnet agent`` of simulated machines; each reaches the other only
through a loopback proxy (the link). The operators peer them with ``fabnet peers key|add|hello``
each way; then each hub's federation tick advertises its capacity and the other sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from two_hubs_support import LinkProxy, Site, Timings, make_site, peer_key, until

from fabnet.sim.makers import SimMachine, SimMaker

A_MAKERS = (SimMaker("ada", (SimMachine("mk3s-1", "prusa_mk3s", "PLA", ("PLA",)),)),)
B_MAKERS = (SimMaker("dana", (SimMachine("shapeoko-ply", "shapeoko3", "plywood", ("plywood",)),)),)
UP_S = 40.0


@dataclass
class Pair:
    a: Site
    b: Site
    to_b: LinkProxy  # hub-a calls hub-b through it
    to_a: LinkProxy  # hub-b calls hub-a through it

    def cut(self) -> None:
        self.to_b.cut()
        self.to_a.cut()

    def restore(self) -> None:
        self.to_b.restore()
        self.to_a.restore()

    def logs(self) -> str:
        return f"{self.a.output()}\n{self.b.output()}"


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[Pair]:
    timings = Timings()
    sites: list[Site] = []
    links: list[LinkProxy] = []
    try:
        sites.append(make_site(tmp_path, "hub-a", A_MAKERS, database_url=None, timings=timings))
        sites.append(make_site(tmp_path, "hub-b", B_MAKERS, database_url=pg_url,
                               timings=timings))  # fmt: skip
        a, b = sites
        links += [LinkProxy(b.http_port), LinkProxy(a.http_port)]
        for site in sites:
            site.start_hub()
            site.start_agents()
        yield Pair(a, b, *links)
    finally:
        for link in links:
            link.cut()
        for site in sites:
            site.stop()


def peer_up(pair: Pair) -> None:
    """What the two operators do: exchange keys, add each other (the URL each hub reaches the
    other at: the link), then say hello both ways."""
    a, b = pair.a, pair.b
    a.cli("peers", "add", b.name, "--url", pair.to_b.url, "--key", peer_key(b))
    b.cli("peers", "add", a.name, "--url", pair.to_a.url, "--key", peer_key(a))
    assert "not confirmed" in a.cli("peers", "hello", b.name)  # hub-b has not said hello yet
    assert " confirmed" in b.cli("peers", "hello", a.name).replace("not confirmed", "")
    for site in (a, b):
        assert all(p["confirmed"] for p in site.api("GET", "/peers")), site.name


def capacity_of(site: Site, peer: str) -> dict[str, Any] | None:
    """``peer``'s latest capacity summary as ``site`` keeps it, if fresh."""
    for entry in site.api("GET", "/peers/capacity"):
        if entry["peer"] == peer and entry["fresh"]:
            return dict(entry["summary"])
    return None


def idle_line(summary: dict[str, Any] | None, kind: str, material: str) -> bool:
    return summary is not None and any(
        line["kind"] == kind and line["material"] == material and line["idle"] >= 1
        for line in summary["lines"]
    )


def test_peered_hubs_see_each_others_capacity(pair: Pair) -> None:
    peer_up(pair)
    a, b = pair.a, pair.b
    until(lambda: idle_line(capacity_of(a, b.name), "cnc", "plywood"), UP_S,
          "hub-a to hold hub-b's fresh capacity with an idle CNC router", pair.logs)  # fmt: skip
    until(lambda: idle_line(capacity_of(b, a.name), "fdm", "PLA"), UP_S,
          "hub-b to hold hub-a's fresh capacity with an idle FDM printer", pair.logs)  # fmt: skip
    assert not idle_line(capacity_of(a, b.name), "fdm", "PLA")  # hub-b has no printer
