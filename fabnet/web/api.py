"""``/api/v1``: submit, list, show and cancel jobs; tasks; machines; ledger totals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from fabnet.core.ledger import LedgerKey
from fabnet.errors import InvalidInput
from fabnet.hub.service import HubService, JobRequest, job_json


def make_api(service: HubService, api_token: str) -> Blueprint:
    api = Blueprint("api_v1", __name__)

    @api.before_request
    def authenticate() -> None:
        from fabnet.web.app import token_ok

        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token_ok(token.strip(), api_token):
            abort(401, description="missing or wrong API token (Authorization: Bearer <token>)")

    @api.post("/jobs")
    def submit_job() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if body is None:
            raise InvalidInput("request body must be JSON (Content-Type: application/json)")
        info = service.submit(JobRequest.from_json(body))
        return jsonify(job_json(info)), 201

    @api.get("/jobs")
    def list_jobs() -> Response:
        requester = request.args.get("requester")
        limit = _int_arg("limit", 100, 1, 1000)
        return jsonify([job_json(j) for j in service.store.jobs.find(requester, limit)])

    @api.get("/jobs/<job_id>")
    def show_job(job_id: str) -> Response:
        data: dict[str, Any] = job_json(service.store.jobs.get(job_id))
        data["task_list"] = service.job_tasks(job_id)
        return jsonify(data)

    @api.post("/jobs/<job_id>/cancel")
    def cancel_job(job_id: str) -> Response:
        return jsonify(job_json(service.cancel(job_id)))

    @api.get("/tasks/<task_id>")
    def show_task(task_id: str) -> Response:
        return jsonify(service.task(task_id))

    @api.get("/machines")
    def list_machines() -> Response:
        return jsonify(
            [
                {
                    "id": m.machine_id,
                    "maker": m.maker_id,
                    "kind": m.kind.value,
                    "profile": m.profile,
                    "state": m.state.value,
                    "materials": sorted(m.materials),
                    "last_seen": m.last_seen.isoformat() if m.last_seen else None,
                }
                for m in service.store.catalog.list_machines()
            ]
        )

    @api.get("/ledger/totals")
    def ledger_totals() -> Response:
        by_text = request.args.get("by")
        try:
            by = LedgerKey(by_text) if by_text else None
        except ValueError:
            choices = ", ".join(k.value for k in LedgerKey)
            raise InvalidInput(f"by must be one of {choices}, got {by_text!r}") from None
        totals = service.store.ledger_totals(by)
        return jsonify({key: _totals_json(t) for key, t in totals.items()})

    return api


def _totals_json(t: Any) -> dict[str, Any]:
    return {name: getattr(t, name) for name in t.__dataclass_fields__}


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be {lo}..{hi}, got {value}")
    return value
