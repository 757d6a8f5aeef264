"""Registering a machine from the maker page: the same schema and registration function as
``POST /api/v1/machines``, shown as the agent config to copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, request

from fabnet.errors import Conflict, InvalidInput, NotFound
from fabnet.profiles import list_profiles
from fabnet.web.api.machines import MACHINE_REGISTER, POLICY
from fabnet.web.api.registration import register_machine
from fabnet.web.auth import User

API_EXTENSION = "fabnet_api_context"


@dataclass(frozen=True)
class Registered:
    """What the maker copies: the machine's hub id and its agent config (with the password)."""

    machine_id: str
    config: str


def profiles() -> list[str]:
    return list(list_profiles())


def register_from_form(user: User) -> Registered:
    """Register the machine the form describes for one of ``user``'s makers.

    Raises InvalidInput (a bad field, named), Conflict (taken), 403 for another maker's id."""
    form = request.form
    body: dict[str, Any] = {
        k: form.get(k, "").strip() for k in ("agent", "machine", "profile", "driver", "material")
    }
    body["agent"] = form.get("maker", "").strip()
    body = MACHINE_REGISTER.validate(body)
    if not user.owns_maker(body["agent"]):
        abort(403, description=f"maker {body['agent']!r} is not yours")
    body["policy"] = body["policy"] or POLICY.validate({})
    if not body["policy"]["materials"]:
        body["policy"]["materials"] = [body["material"]]
    ctx = current_app.extensions[API_EXTENSION]
    owner = None if user.user_id.startswith("bootstrap") else user.user_id
    done = register_machine(ctx.store, body, owner, ctx.broker, ctx.hub_url, ctx.clock())
    return Registered(done.machine_id, done.config_toml)


__all__ = ["Conflict", "InvalidInput", "NotFound", "Registered", "profiles", "register_from_form"]
