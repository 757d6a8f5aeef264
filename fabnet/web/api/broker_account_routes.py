"""``/makers/<agent>/...`` routes: reset, disable, enable and delete an agent's broker
account (``AgentAccounts``), for the agent's maker or an operator."""

from __future__ import annotations

from typing import Any

from fabnet.web.api.broker_accounts import AgentAccounts
from fabnet.web.api.context import ApiContext, forbid
from fabnet.web.auth import MAKER, User
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, Schema

BROKER_PASSWORD = Schema(
    "BrokerPassword",
    (
        Field("agent", "string", required=True),
        Field("url", "string", required=True),
        Field("username", "string", required=True),
        Field("password", "string", required=True, description="shown once"),
        Field("note", "string", required=True),
    ),
)
ACCOUNT_STATE = Schema(
    "BrokerAccountChanged",
    (
        Field("agent", "string", required=True),
        Field("broker_account", "string", required=True, enum=("enabled", "disabled", "deleted")),
        Field("note", "string", required=True),
    ),
)
STATE_NOTES = {
    "disabled": "disconnected now; the broker refuses its log-ins until it is enabled",
    "enabled": "the agent may log in again with its password",
    "deleted": "disconnected and forgotten; its machines stay recorded; registering a machine "
    "for it again issues a new password",
}


def register_account_routes(routes: ApiRoutes, ctx: ApiContext) -> None:
    """``/makers/<agent>/...``: reset, disable, enable and delete an agent's broker account
    (the agent's maker or an operator)."""

    def accounts_of(user: User | None, agent: str) -> AgentAccounts:
        if not user_of(user).owns_maker(agent):
            forbid(f"agent {agent!r} is not one of your makers")
        return AgentAccounts(ctx.store, ctx.broker)

    def changed(agent: str, state: str) -> dict[str, Any]:
        return {"agent": agent, "broker_account": state, "note": STATE_NOTES[state]}

    @routes.route(
        "POST",
        "/makers/<agent>/broker-password",
        summary="Issue a new broker password for an agent (the old one stops working)",
        roles=(MAKER,),
        response=BROKER_PASSWORD,
    )
    def reset_broker_password(user: User | None, agent: str) -> dict[str, Any]:
        password = accounts_of(user, agent).reset(agent)
        note = f"new broker password for agent {agent}, shown once: put it in its agent.toml"
        return {"agent": agent, "url": ctx.broker.url, "username": agent, "password": password,
                "note": note}  # fmt: skip

    @routes.route(
        "POST",
        "/makers/<agent>/disable",
        summary="Disable an agent's broker account: disconnected, log-ins refused",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def disable_agent(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).set_enabled(agent, False)
        return changed(agent, "disabled")

    @routes.route(
        "POST",
        "/makers/<agent>/enable",
        summary="Enable a disabled agent's broker account again",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def enable_agent(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).set_enabled(agent, True)
        return changed(agent, "enabled")

    @routes.route(
        "DELETE",
        "/makers/<agent>/broker-account",
        summary="Delete an agent's broker account (its machines stay recorded)",
        roles=(MAKER,),
        response=ACCOUNT_STATE,
    )
    def delete_agent_account(user: User | None, agent: str) -> dict[str, Any]:
        accounts_of(user, agent).delete(agent)
        return changed(agent, "deleted")
