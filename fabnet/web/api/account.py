"""``/me`` and ``/tokens``: who is logged in, and their API tokens (shown once, revocable)."""

from __future__ import annotations

from typing import Any

from fabnet.errors import Conflict
from fabnet.store.accounts import TokenInfo
from fabnet.web.api.context import ApiContext, iso
from fabnet.web.auth import BOOTSTRAP_USER_ID, MAKER, OPERATOR, REQUESTER, User, forget_tokens
from fabnet.web.openapi import ApiRoutes, user_of
from fabnet.web.schemas import Field, ListOf, Schema

ANY_ROLE = (MAKER, REQUESTER, OPERATOR)
ME = Schema(
    "Me",
    (
        Field("id", "string", required=True),
        Field("name", "string", required=True, min_length=1),
        Field("roles", "array", required=True, items=Field("role", "string")),
        Field("maker_ids", "array", required=True, items=Field("maker", "string")),
    ),
)
TOKEN_FIELDS = (
    Field("id", "string", required=True),
    Field("name", "string", required=True, min_length=1),
    Field("created_at", "string", required=True, format="date-time"),
    Field("last_used_at", "string", nullable=True, required=True, format="date-time"),
    Field("revoked_at", "string", nullable=True, required=True, format="date-time"),
)
TOKEN = Schema("Token", TOKEN_FIELDS)
NEW_TOKEN = Schema(
    "NewToken",
    (*TOKEN_FIELDS, Field("token", "string", required=True, description="shown only once")),
)
TOKEN_CREATE = Schema(
    "TokenCreate", (Field("name", "string", required=True, min_length=1, max_length=100),)
)


def token_json(t: TokenInfo) -> dict[str, Any]:
    return {
        "id": t.token_id,
        "name": t.name,
        "created_at": t.created_at.isoformat(),
        "last_used_at": iso(t.last_used_at),
        "revoked_at": iso(t.revoked_at),
    }


def register(routes: ApiRoutes, ctx: ApiContext) -> None:
    accounts = ctx.service.store.accounts

    def account_id(user: User | None) -> str:
        me = user_of(user)
        if me.user_id == BOOTSTRAP_USER_ID:
            raise Conflict("the hub config's bootstrap token has no account: use a user's")
        return me.user_id

    @routes.route("GET", "/me", summary="The logged-in user", roles=ANY_ROLE, response=ME)
    def me(user: User | None) -> dict[str, Any]:
        u = user_of(user)
        return {"id": u.user_id, "name": u.name, "roles": sorted(u.roles),
                "maker_ids": sorted(u.maker_ids)}  # fmt: skip

    @routes.route("GET", "/tokens", summary="My API tokens", roles=ANY_ROLE, response=ListOf(TOKEN))
    def list_tokens(user: User | None) -> list[dict[str, Any]]:
        return [token_json(t) for t in accounts.list_tokens(account_id(user))]

    @routes.route(
        "POST",
        "/tokens",
        summary="Create an API token (the token is shown only here)",
        roles=ANY_ROLE,
        body=TOKEN_CREATE,
        response=NEW_TOKEN,
        status=201,
    )
    def create_token(user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        raw, info = accounts.issue_token(account_id(user), body["name"], ctx.clock())
        return {**token_json(info), "token": raw}

    @routes.route(
        "DELETE",
        "/tokens/<token_id>",
        summary="Revoke one of my tokens",
        roles=ANY_ROLE,
        response=TOKEN,
    )
    def revoke_token(user: User | None, token_id: str) -> dict[str, Any]:
        revoked = accounts.revoke_token(account_id(user), token_id, ctx.clock())
        forget_tokens()
        return token_json(revoked)
