"""API routes declared with their schemas: one decorator registers the Flask view, validates
its input with those schemas, and records it for the generated OpenAPI 3.1 document."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request

from fabnet import __version__
from fabnet.errors import InvalidInput
from fabnet.web.auth import User, current_user, require_login
from fabnet.web.schemas import ListOf, Schema

OPENAPI_VERSION = "3.1.0"
ERROR_STATUSES = {
    400: "invalid input (the message names the field and the value)",
    401: "not logged in and no valid bearer token",
    403: "the user's roles or ownership do not allow this",
    404: "no such thing",
    409: "the thing's state forbids the action (the message says why)",
}
_RULE_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
MAX_PATH_ARG_CHARS = 200  # ids are 32 hex, slugs and names shorter; longer is never a real one

Shape = Schema | ListOf
View = Callable[..., Any]


@dataclass(frozen=True)
class Endpoint:
    """One API operation as the OpenAPI document shows it."""

    method: str
    rule: str
    name: str
    summary: str
    roles: tuple[str, ...]
    query: Schema | None
    body: Schema | None
    form: Schema | None
    response: Shape | None
    status: int
    public: bool


class ApiRoutes:
    """A blueprint whose routes carry their schemas.

    ``route`` wraps a view ``view(user, *, query=..., body=..., form=..., **url_args)`` that
    returns a JSON-able value (or a ``Response``); the wrapper checks log-in and roles
    (``require_login``), validates input with the declared schemas and answers ``status``.
    """

    def __init__(self, name: str) -> None:
        self.blueprint = Blueprint(name, __name__)
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        roles: tuple[str, ...] = (),
        query: Schema | None = None,
        body: Schema | None = None,
        form: Schema | None = None,
        response: Shape | None = None,
        status: int = 200,
        public: bool = False,
    ) -> Callable[[View], View]:
        def decorate(view: View) -> View:
            @functools.wraps(view)
            def wrapped(**url_args: Any) -> Any:
                user = current_user()
                kwargs = dict(url_args)
                for name, value in url_args.items():
                    if isinstance(value, str) and len(value) > MAX_PATH_ARG_CHARS:
                        raise InvalidInput(
                            f"{name} must be at most {MAX_PATH_ARG_CHARS} characters, "
                            f"got {len(value)}"
                        )
                if query is not None:
                    kwargs["query"] = query.validate_strings(request.args)
                if body is not None:
                    kwargs["body"] = body.validate(_json_body(optional=not body.required))
                if form is not None:
                    kwargs["form"] = _form(form)
                result = view(user, **kwargs)
                if isinstance(result, Response):
                    return result
                return jsonify(result), status

            guarded = wrapped if public else require_login(*roles)(wrapped)
            self.blueprint.add_url_rule(
                rule, endpoint=view.__name__, view_func=guarded, methods=[method]
            )
            self.endpoints.append(
                Endpoint(
                    method,
                    rule,
                    view.__name__,
                    summary,
                    roles,
                    query,
                    body,
                    form,
                    response,
                    status,
                    public,
                )
            )
            return view

        return decorate


def _json_body(optional: bool) -> Any:
    if optional and not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidInput("request body must be JSON (Content-Type: application/json)")
    return body


def _form(form: Schema) -> dict[str, Any]:
    """A multipart form: text fields validated from strings, files (format binary) present."""
    texts = {k: v for k, v in request.form.items() if k != "csrf_token"}
    files = {f.name for f in form.fields if f.format == "binary"}
    checked = Schema(form.name, tuple(f for f in form.fields if f.name not in files), open=False)
    out = checked.validate_strings(texts, "form")
    for name in files:
        upload = request.files.get(name)
        if upload is None or not upload.filename:
            if form.by_name[name].required:
                raise InvalidInput(f"{name} is required (a file in a multipart/form-data body)")
            out[name] = None
        else:
            out[name] = upload
    return out


def user_of(user: User | None) -> User:
    """The logged-in user handed to views of non-public routes."""
    assert user is not None, "require_login lets no anonymous request through"
    return user


def openapi_path(rule: str) -> str:
    """Flask's ``/jobs/<job_id>`` as OpenAPI's ``/jobs/{job_id}``."""
    return _RULE_ARG.sub(r"{\1}", rule)


def openapi_document(endpoints: list[Endpoint], prefix: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``endpoints`` mounted under ``prefix``."""
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            "required": ["error", "message"],
        }
    }
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        path = prefix + openapi_path(e.rule)
        paths.setdefault(path, {})[e.method.lower()] = _operation(e, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "fabnet hub API", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


def _ref(shape: Shape, schemas: dict[str, Any]) -> dict[str, Any]:
    if isinstance(shape, ListOf):
        schemas[shape.item.name] = shape.item.json_schema()
        return shape.json_schema()
    schemas[shape.name] = shape.json_schema()
    return {"$ref": f"#/components/schemas/{shape.name}"}


def _operation(e: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": e.name, "summary": e.summary}
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "maxLength": MAX_PATH_ARG_CHARS},
        }
        for name in _RULE_ARG.findall(e.rule)
    ]
    if e.query is not None:
        params.extend(e.query.parameters())
    if params:
        op["parameters"] = params
    if e.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(e.body, schemas)}},
        }
    if e.form is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": _ref(e.form, schemas)}},
        }
    ok: dict[str, Any] = {"description": "success"}
    if e.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(e.response, schemas)}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = {str(e.status): ok} | {
        str(code): {"description": text, **error} for code, text in ERROR_STATUSES.items()
    }
    if e.roles:
        op["description"] = f"roles: {', '.join(e.roles)} (operators may do everything)"
    op["security"] = [] if e.public else [{"bearer": []}, {"session": []}]
    return op
