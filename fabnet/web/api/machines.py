"""``/machines`` and ``/makers``: own (operators: all), register (agent config and broker
credentials), and policy / loaded-material changes recorded for the maker."""

from __future__ import annotations

from typing import Any

from flask import Response

from fabnet.core.cron import CronExpr
from fabnet.core.machines import Machine
from fabnet.core.states import FailureCause, MachineState
from fabnet.errors import InvalidInput
from fabnet.hub.machines import hub_machine_id
from fabnet.profiles.canonical import canonical_material
from fabnet.store import Store
from fabnet.store.convert import policy_to_json
from fabnet.web.api.context import LIMIT, OFFSET, ApiContext, forbid, iso, own_makers
from fabnet.web.api.jobs import TASK, paged, task_with_maker
from fabnet.web.api.registration import register_account_routes, register_machine
from fabnet.web.auth import MAKER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

DRIVERS = ("sim", "octoprint", "marlin", "grbl")
NOT_PUSHED = (
    "recorded; not pushed: this hub runs no dispatcher, so change the agent's config to apply "
    "it (the hub keeps what the agent reports)"
)
NOT_PUSHED_YET = (
    "recorded; not pushed yet: the hub is not connected to the broker now; the command "
    "(machine.configure) goes to the agent when it reconnects"
)
PUSHED = (
    "recorded and sent to the agent (machine.configure); the machine's status shows it once "
    "the agent has applied it"
)

POLICY = Schema(
    "Policy",
    (
        Field("materials", "array", items=Field("material", "string"), default=[]),
        Field("max_task_hours", "number", minimum=0.01, maximum=1000, default=24.0),
        Field("auto_accept", "boolean", default=True),
        Field("windows", "array", items=Field("cron", "string"), default=[]),
    ),
)
MACHINE_FIELDS = (
    Field("id", "string", required=True, description="<agent>/<machine>"),
    Field("maker", "string", required=True),
    Field("name", "string", required=True),
    Field("kind", "string", required=True, enum=("fdm", "cnc")),
    Field("profile", "string", required=True, min_length=1),
    Field("driver", "string", required=True),
    Field("state", "string", required=True, enum=tuple(s.value for s in MachineState)),
    Field("materials", "array", required=True, items=Field("material", "string")),
    Field("policy", "object", required=True),
    Field("last_seen", "string", nullable=True, required=True, format="date-time"),
    Field("held", "boolean", required=True, description="on hold: offered no work"),
    Field("hold_reason", "string", nullable=True, required=True),
    Field("last_failure", "string", nullable=True, required=True,
          enum=tuple(c.value for c in FailureCause), description="its latest failure's cause"),
)  # fmt: skip
MACHINE = Schema("Machine", MACHINE_FIELDS)
RELEASED_HOLD = Schema(
    "HoldReleased",
    (
        Field("machine_id", "string", required=True),
        Field("held", "boolean", required=True),
    ),
)
CHANGE = Schema(
    "MachineChange",
    (
        Field("user", "string", required=True),
        Field("at", "string", required=True, format="date-time"),
        Field("change", "object", required=True),
    ),
)
MACHINE_DETAIL = Schema(
    "MachineDetail",
    (
        *MACHINE_FIELDS,
        Field("tasks", "array", required=True, items=TASK, description="tasks it holds"),
        Field("changes", "array", required=True, items=CHANGE, description="asked changes"),
    ),
)
MACHINE_QUERY = Schema(
    "MachineQuery",
    (
        LIMIT,
        OFFSET,
        Field("state", "string", enum=tuple(s.value for s in MachineState)),
        Field("maker", "string"),
    ),
)
MACHINE_REGISTER = Schema(
    "MachineRegister",
    (
        Field("agent", "string", required=True, min_length=1, description="your agent (maker) id"),
        Field(
            "machine",
            "string",
            required=True,
            min_length=1,
            description="machine id within the agent",
        ),
        Field("profile", "string", required=True, min_length=1, description="firmware profile id"),
        Field("driver", "string", enum=DRIVERS, default="sim"),
        Field("material", "string", required=True, min_length=1, description="loaded material"),
        Field("policy", "object", schema=POLICY, default=None),
        Field("driver_options", "object", default=None),
    ),
)
REGISTERED = Schema(
    "MachineRegistered",
    (
        Field("machine_id", "string", required=True),
        Field("agent", "string", required=True, min_length=1),
        Field("config_toml", "string", required=True, description="the agent's config file"),
        Field(
            "broker",
            "object",
            required=True,
            schema=Schema(
                "BrokerCredentials",
                (
                    Field("url", "string", required=True),
                    Field("username", "string", required=True),
                    Field(
                        "password",
                        "string",
                        nullable=True,
                        required=True,
                        description="shown once; null when the agent already had one",
                    ),
                ),
            ),
        ),  # fmt: skip
        Field("password_file_written", "boolean", required=True),
        Field(
            "note",
            "string",
            required=True,
            description="whether the agent got a new broker password or keeps its own",
        ),
    ),
)
MACHINE_UPDATE = Schema(
    "MachineUpdate",
    (
        Field("policy", "object", schema=POLICY, default=None),
        Field("materials", "array", items=Field("material", "string"), default=None,
              description="the loaded material, as a list of one"),
    ),
)  # fmt: skip
UPDATED = Schema(
    "MachineUpdated",
    (
        Field("machine_id", "string", required=True),
        Field("recorded", "boolean", required=True),
        Field("pushed", "boolean", required=True, description="sent to the agent"),
        Field("note", "string", required=True),
    ),
)
MAKER_SCHEMA = Schema(
    "Maker",
    (
        Field("id", "string", required=True),
        Field("name", "string", required=True),
        Field("machines", "integer", required=True),
        Field("machines_by_state", "object", required=True),
    ),
)


def machines_json(store: Store, machines: list[Machine]) -> list[dict[str, Any]]:
    """Machines as the API shows them, with their hold and latest failure cause."""
    ids = frozenset(m.machine_id for m in machines)
    holds = store.holds.held(ids) if any(m.held for m in machines) else {}
    failures = store.holds.last_failures(ids)
    out = []
    for m in machines:
        data = machine_json(m)
        hold = holds.get(m.machine_id)
        data["hold_reason"] = hold.reason if hold else None
        failure = failures.get(m.machine_id)
        data["last_failure"] = failure.value if failure else None
        out.append(data)
    return out


def machine_json(m: Machine) -> dict[str, Any]:
    return {
        "id": m.machine_id,
        "maker": m.maker_id,
        "name": m.name,
        "kind": m.kind.value,
        "profile": m.profile,
        "driver": m.driver,
        "state": m.state.value,
        "materials": sorted(m.materials),
        "policy": policy_to_json(m.policy),
        "last_seen": iso(m.last_seen),
        "held": m.held,
    }


def _configuration(found: Machine, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The loaded material and the whole policy a PUT body asks for, what it leaves out taken
    from the machine as its agent last reported it. Raises InvalidInput naming the field."""
    loaded = body["materials"] if body["materials"] is not None else sorted(found.materials)[:1]
    if len(loaded) != 1:
        raise InvalidInput(f"materials must name the one loaded material, got {loaded!r}")
    material = canonical_material(loaded[0], "materials[0]")
    if body["policy"] is None:
        p = found.policy
        accepted = sorted(p.materials_accepted)
        hours, auto, windows = p.max_task_hours, p.auto_accept, [w.text for w in p.windows]
    else:
        accepted = [canonical_material(m, "policy.materials") for m in body["policy"]["materials"]]
        hours = body["policy"]["max_task_hours"]
        auto, windows = body["policy"]["auto_accept"], body["policy"]["windows"]
    for i, text in enumerate(windows):
        try:
            CronExpr.parse(text)
        except InvalidInput as exc:
            raise InvalidInput(f"policy.windows[{i}]: {exc}") from None
    policy = {
        "materials": tuple(accepted or [material]),  # none named: the loaded one
        "max_task_hours": hours,
        "auto_accept": auto,
        "windows": tuple(windows),
    }
    return material, policy


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    store = ctx.service.store
    register_account_routes(routes, ctx)

    def own_machine(user: User | None, agent: str, machine: str) -> Machine:
        machine_id = hub_machine_id(agent, machine)
        found = store.catalog.get_machine(machine_id)
        if not user_of(user).can_manage_machine(machine_id):
            forbid(f"machine {machine_id} belongs to another maker")
        return found

    @routes.route(
        "GET",
        "/machines",
        summary="List machines (own; operators: all)",
        roles=(MAKER,),
        query=MACHINE_QUERY,
        response=ListOf(MACHINE),
    )
    def list_machines(user: User | None, query: dict[str, Any]) -> Response:
        me = user_of(user)
        makers = own_makers(me)
        if query["maker"] is not None:
            if not me.owns_maker(query["maker"]):
                forbid(f"maker {query['maker']!r} is not yours")
            makers = frozenset({query["maker"]})
        found = ctx.listings.machines(makers, query["limit"], query["offset"], query["state"])
        return paged(machines_json(store, found), query["limit"], query["offset"])

    @routes.route(
        "GET",
        "/machines/<agent>/<machine>",
        summary="A machine, its tasks and asked changes",
        roles=(MAKER,),
        response=MACHINE_DETAIL,
    )
    def show_machine(user: User | None, agent: str, machine: str) -> dict[str, Any]:
        found = own_machine(user, agent, machine)
        (data,) = machines_json(store, [found])
        data["tasks"] = [
            task_with_maker(t) for t in ctx.listings.tasks_on_machine(found.machine_id, 50)
        ]
        data["changes"] = [
            {"user": c.user_name, "at": c.at.isoformat(), "change": c.change}
            for c in store.accounts.machine_changes(found.machine_id)
        ]
        return data

    @routes.route(
        "POST",
        "/machines",
        summary="Register a machine: agent config and broker credentials",
        roles=(MAKER,),
        body=MACHINE_REGISTER,
        response=REGISTERED,
        status=201,
    )
    def register_machine_route(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        me = user_of(user)
        if not me.owns_maker(body["agent"]):
            forbid(f"agent {body['agent']!r} is not one of your makers ({sorted(me.maker_ids)})")
        body["policy"] = body["policy"] or POLICY.validate({})
        if not body["policy"]["materials"]:
            body["policy"]["materials"] = [body["material"]]
        owner = None if me.user_id.startswith("bootstrap") else me.user_id
        done = register_machine(store, body, owner, ctx.broker, ctx.hub_url, ctx.clock())
        return {
            "machine_id": done.machine_id,
            "agent": done.agent,
            "config_toml": done.config_toml,
            "broker": {"url": ctx.broker.url, "username": done.agent, "password": done.password},
            "password_file_written": done.password_file is not None,
            "note": done.note,
        }

    @routes.route(
        "PUT",
        "/machines/<agent>/<machine>",
        summary="Change policy / loaded material: recorded and pushed to the agent",
        roles=(MAKER,),
        body=MACHINE_UPDATE,
        response=UPDATED,
    )
    def update_machine(
        user: User | None, agent: str, machine: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        found = own_machine(user, agent, machine)
        change = {k: v for k, v in body.items() if v is not None}
        if not change:
            raise InvalidInput("give policy and/or materials, got neither")
        material, policy = _configuration(found, body)
        store.accounts.record_machine_change(
            found.machine_id, user_of(user).name, change, ctx.clock()
        )
        configurer = ctx.machine_configurer()
        pushed = False
        note = NOT_PUSHED
        if configurer is not None:
            pushed = configurer.configure_machine(found.machine_id, material, **policy)
            note = PUSHED if pushed else NOT_PUSHED_YET
        return {"machine_id": found.machine_id, "recorded": True, "pushed": pushed, "note": note}

    @routes.route(
        "POST",
        "/machines/<agent>/<machine>/release-hold",
        summary="Offer work to a machine on hold again (its maker or an operator)",
        roles=(MAKER,),
        response=RELEASED_HOLD,
    )
    def release_hold(user: User | None, agent: str, machine: str) -> dict[str, Any]:
        found = own_machine(user, agent, machine)
        store.holds.release(found.machine_id, ctx.clock())  # Conflict (409) if not held
        store.accounts.record_machine_change(
            found.machine_id, user_of(user).name, {"hold": "released"}, ctx.clock()
        )
        return {"machine_id": found.machine_id, "held": False}

    @routes.route(
        "GET",
        "/makers",
        summary="Makers with machine counts (own; operators: all)",
        roles=(MAKER,),
        query=Schema("MakerQuery", (LIMIT, OFFSET)),
        response=ListOf(MAKER_SCHEMA),
    )
    def list_makers(user: User | None, query: dict[str, Any]) -> Response:
        found = ctx.listings.makers(own_makers(user_of(user)), query["limit"], query["offset"])
        return paged(
            [
                {"id": m.maker_id, "name": m.name, "machines": m.machines,
                 "machines_by_state": m.machines_by_state}
                for m in found
            ],
            query["limit"],
            query["offset"],
        )  # fmt: skip
