"""Rendering shared by the dashboard's pages: templates, static files, HTML error pages."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, render_template, request
from werkzeug.exceptions import HTTPException

from fabnet.errors import FabnetError
from fabnet.web.http_status import status_for

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"

# Templates and static files; the other blueprints only add views.
assets = Blueprint(
    "dashboard_assets",
    __name__,
    template_folder=str(TEMPLATES),
    static_folder=str(STATIC),
    static_url_path="/assets",
)


def page_blueprint(name: str) -> Blueprint:
    """A blueprint whose errors render as HTML pages rather than JSON."""
    bp = Blueprint(name, __name__, template_folder=str(TEMPLATES))
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(FabnetError, _fabnet_error)
    return bp


def _http_error(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    return render_template("error.html", code=code, title=exc.name, message=exc.description), code


def _fabnet_error(exc: FabnetError) -> tuple[str, int]:
    code = status_for(exc)
    if code == 500:
        log.error("unmapped error on %s: %s", request.path, exc)
    title = type(exc).__name__
    return render_template("error.html", code=code, title=title, message=str(exc)), code


MAX_PAGE = 10_000


def page_number() -> int:
    """``?page=`` of a paged list (1-based, default 1); 400 unless a whole number 1..MAX_PAGE."""
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, description=f"page must be a whole number 1..{MAX_PAGE}, got {raw!r}")
    return int(raw)


def render(template: str, **context: Any) -> str:
    """Render ``template`` with ``context``."""
    return render_template(template, **context)
