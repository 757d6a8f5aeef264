"""The ``api`` role's commands (issue 9): with no dispatcher in the process, a maker's answer to an
offer is applied through the store, and cancel, pause and configure change the store first and
then reach the agent over the process's own bus client (real Mosquitto)."""

from __future__ import annotations

import queue
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from api_support import CUBE, sample_machine

from fabnet.bus import messages as m
from fabnet.bus import topics
from fabnet.bus.client import BusClient
from fabnet.core import events as ev
from fabnet.core.states import TaskState
from fabnet.errors import Conflict
from fabnet.hub.commands import ApiCommands
from fabnet.hub.designs import DesignCatalog
from fabnet.hub.dispatch.dispatcher import DEFAULT_PRODUCTION_GRACE_S
from fabnet.hub.service import HubService, JobRequest, OfferAnswers
from fabnet.library.design import library_dir
from fabnet.store import Store

if TYPE_CHECKING:
    from conftest import BrokerHandle

WAIT_S = 10.0


def test_api_role_answers_offers_through_the_store_and_commands_reach_the_agent(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    now = datetime.now(UTC)
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    library = tmp_path / "library"
    shutil.copytree(library_dir() / CUBE, library / CUBE)
    designs = DesignCatalog(store, library)
    designs.register_library(now)
    store.catalog.add_maker("alice", now, maker_id="alice")
    machine = store.catalog.upsert_machine(sample_machine("alice", "m1", False, now))
    heard: queue.Queue[m.Message] = queue.Queue()
    agent = BusClient(mosquitto.settings("hub"))  # stands in for alice's agent, reading
    agent.subscribe(topics.agent_commands("alice"), lambda t, msg: heard.put(msg))
    bus = BusClient(mosquitto.settings("hub"))
    agent.start()
    bus.start()
    try:
        assert agent.wait_connected(WAIT_S) and bus.wait_connected(WAIT_S)
        commands = ApiCommands(store, bus, lease_s=60)
        service = HubService(
            store, designs, commands.cancel_job, control_task=commands.control_task
        )
        request = JobRequest(design=CUBE, quantity=2, material="PLA", requester="rita")
        job = service.submit(request).spec.job_id
        first, second = (t.task_id for t in store.tasks.find(job_id=job))
        for task_id in (first, second):
            store.apply_event(task_id, ev.TaskOffered(machine_id=machine.machine_id), now)

        answers = OfferAnswers(commands)  # what /offers and the dashboard call
        before = datetime.now(UTC)
        answers.decide(machine.machine_id, first, 1, True, "")
        # a claim the API applies leaves the dispatcher time to slice, as its own claims do
        lease_until = store.tasks.get(first).lease_until
        assert lease_until is not None
        assert lease_until >= before + timedelta(seconds=60 + DEFAULT_PRODUCTION_GRACE_S)
        answers.decide(machine.machine_id, second, 1, False, "not today")
        assert store.tasks.get(first).state is TaskState.CLAIMED  # a dispatcher produces it
        assert store.tasks.get(second).state is TaskState.QUEUED
        answers.decide(machine.machine_id, second, 1, True, "")  # a stale answer: no change
        assert store.tasks.get(second).state is TaskState.QUEUED

        with pytest.raises(Conflict, match="not running"):
            service.pause(first)
        for event in (
            ev.TaskAssigned(machine_id=machine.machine_id, offer_no=1, lease_s=60),
            ev.TaskStarted(machine_id=machine.machine_id, offer_no=1, lease_s=60),
        ):
            store.apply_event(first, event, now)
        service.pause(first)
        pause = heard.get(timeout=WAIT_S)
        assert isinstance(pause, m.TaskPause) and (pause.task_id, pause.machine) == (first, "m1")

        assert commands.configure_machine(machine.machine_id, "PLA", ("PLA",), 4.0, True, ())
        configure = heard.get(timeout=WAIT_S)
        assert isinstance(configure, m.MachineConfigure) and configure.max_task_hours == 4.0

        service.cancel(job)
        cancel = heard.get(timeout=WAIT_S)
        assert isinstance(cancel, m.TaskCancel) and cancel.task_id == first
        assert store.jobs.get(job).state.value == "cancelled"
        assert heard.empty(), "the queued task was held by no machine: nothing to tell"
    finally:
        bus.stop()
        agent.stop()
        store.close()
