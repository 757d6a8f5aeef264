"""One valid message of every v1 type, with the topic it travels on (for the bus tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from fabnet.bus import messages as m
from fabnet.bus import topics

AGENT = "alice"
MACHINE = "mk3s-1"
TASK = "0f3c9a4e8b7d4c21a6e5f4d3c2b1a098"
SHA = "ab" * 32


def capabilities() -> m.Capabilities:
    return m.Capabilities(
        profile="prusa_mk3s",
        kind=m.MachineKind.FDM,
        volume_mm=m.Xyz(x=250.0, y=210.0, z=210.0),
        nozzle_mm=0.4,
        materials=("PLA", "PETG"),
    )


def every_message() -> list[tuple[str, m.Message]]:
    """(topic, message) for each of the 16 types."""
    ev = {"machine": MACHINE, "task_id": TASK, "attempt": 2}
    events = topics.machine_events(AGENT, MACHINE)
    commands = topics.agent_commands(AGENT)
    return [
        (
            topics.agent_status(AGENT),
            m.AgentStatus(state=m.AgentState.ONLINE, version="0.1.0", machines=(MACHINE,)),
        ),
        (
            topics.machine_status(AGENT, MACHINE),
            m.MachineStatus(
                machine=MACHINE,
                state=m.MachineState.BUSY,
                capabilities=capabilities(),
                materials_loaded=("PLA",),
                task_id=TASK,
            ),
        ),
        (
            topics.machine_telemetry(AGENT, MACHINE),
            m.MachineTelemetry(
                machine=MACHINE,
                task_id=TASK,
                percent=42.5,
                hotend_c=214.8,
                hotend_target_c=215.0,
                bed_c=60.1,
                bed_target_c=60.0,
                position_mm=m.Xyz(x=10.0, y=20.5, z=0.2),
            ),
        ),
        (events, m.TaskAccepted(**ev)),
        (events, m.TaskDeclined(**ev, reason="material PETG not loaded")),
        (events, m.TaskStarted(**ev)),
        (
            events,
            m.TaskProgress(
                **ev,
                percent=12.5,
                lines_done=1000,
                lines_total=8000,
                elapsed_s=60.0,
                remaining_s=420.0,
            ),
        ),
        (events, m.TaskCompleted(**ev, grams=12.34, machine_s=3600.5, sha256=SHA)),
        (
            events,
            m.TaskFailed(
                **ev, reason="thermal runaway", raw="Error:Thermal Runaway, system stopped!"
            ),
        ),
        (
            commands,
            m.TaskOffer(
                **ev,
                design_id=SHA,
                design_name="3DBenchy",
                material="PLA",
                est_grams=14.2,
                est_machine_s=5400.0,
                deadline=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            ),
        ),
        (
            commands,
            m.TaskAssign(
                **ev,
                url=f"http://127.0.0.1:5000/api/v1/artifacts/{TASK}.gcode",
                token="t0k3n-abcdefghijklmnop",
                size_bytes=123456,
                sha256=SHA,
                profile="prusa_mk3s",
            ),
        ),
        (commands, m.TaskCancel(**ev)),
        (commands, m.TaskPause(**ev)),
        (commands, m.TaskResume(**ev)),
        (
            commands,
            m.MachineConfigure(
                machine=MACHINE,
                material="PETG",
                materials=("PLA", "PETG"),
                max_task_hours=6.5,
                auto_accept=False,
                windows=("* 18-23 * * 1-5", "* * * * 0,6"),
            ),
        ),
        (
            commands,
            m.MachineHeld(
                machine=MACHINE, failures=3, reason="3 failures in a row, the last thermal_fault"
            ),
        ),
        (commands, m.EventsAck(ids=(m.new_message_id(), m.new_message_id()))),
        (
            topics.hub_status(),
            m.HubStatus(hub_id="hub-1", state=m.HubState.ONLINE, version="0.1.0"),
        ),
    ]
