"""``/designs``: the library with thumbnails, facts, license, lineage and the request form."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from fabnet.core import credits as cr
from fabnet.errors import FabnetError, InvalidInput, NotFound
from fabnet.hub.designs import DesignEntry
from fabnet.hub.service import JobRequest
from fabnet.library.design import Design
from fabnet.library.lineage import credits, non_commercial_in
from fabnet.profiles import load_materials
from fabnet.web.auth import REQUESTER, current_user, require_login
from fabnet.web.dashboard.context import dashboard
from fabnet.web.dashboard.credits import economy
from fabnet.web.dashboard.render import page_blueprint, render

bp = page_blueprint("library")

QUALITIES = ("draft", "normal", "fine")


def _entry(slug: str) -> DesignEntry:
    for entry in dashboard().service.designs.entries():
        if entry.design.slug == slug:
            return entry
    raise NotFound(f"design {slug!r} not found in the library")


def budget_mc(text: str) -> int | None:
    """The form's budget cap in credits (up to three decimals) as milli-credits; blank: None."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text) * cr.MILLI
    except InvalidOperation:
        value = Decimal("NaN")
    if (
        not value.is_finite()
        or value != value.to_integral_value()
        or not 0 < value <= cr.MAX_AMOUNT_MC
    ):
        raise InvalidInput(
            f"budget must be a number of credits > 0 with at most three decimals, got {text!r}"
        )
    return int(value)


def material_names() -> list[str]:
    materials = load_materials()
    return [m.name for m in materials.fdm.values()] + [m.name for m in materials.cnc.values()]


@bp.get("/designs")
@require_login()
def designs() -> str:
    return render("designs.html", entries=dashboard().service.designs.entries())


@bp.get("/designs/<slug>/thumbnail.svg")
@require_login()
def thumbnail(slug: str) -> Response:
    svg = dashboard().thumbnails.svg(_entry(slug).design)
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _children(design: Design) -> list[Design]:
    return [
        e.design for e in dashboard().service.designs.entries() if e.design.remix_of == design.slug
    ]


def _detail(slug: str, error: str | None = None, status: int = 200) -> tuple[str, int]:
    entry = _entry(slug)
    chain = credits(entry.design, entry.design.directory.parent if entry.design.directory else None)
    page = render(
        "design.html",
        entry=entry,
        design=entry.design,
        facts=entry.facts,
        chain=chain,
        non_commercial=non_commercial_in(chain),
        children=_children(entry.design),
        materials=material_names(),
        qualities=QUALITIES,
        error=error,
        form=request.form,
    )
    return page, status


@bp.get("/designs/<slug>")
@require_login()
def design(slug: str) -> tuple[str, int]:
    return _detail(slug)


@bp.post("/designs/<slug>/request")
@require_login(REQUESTER)
def request_copies(slug: str) -> BaseResponse | tuple[str, int]:
    """Submit a job for ``quantity`` copies as the logged-in requester; the job page follows."""
    user = current_user()
    assert user is not None
    try:
        quantity = int(request.form.get("quantity", ""))
    except ValueError:
        return _detail(
            slug, f"quantity must be a whole number, got {request.form.get('quantity')!r}", 400
        )
    job = JobRequest(
        design=_entry(slug).design_id,
        quantity=quantity,
        material=request.form.get("material", ""),
        quality=request.form.get("quality", "normal"),
        requester=user.name,
    )
    try:
        cap = budget_mc(request.form.get("budget", ""))
        if cap is None:
            info = dashboard().service.submit(job)
        else:  # the cap is held from the requester's credits (409 when they fall short)
            info, _ = economy().submit(job, cap)
    except (InvalidInput, NotFound) as exc:
        return _detail(slug, str(exc), 400)
    except FabnetError as exc:
        return _detail(slug, str(exc), 409)
    return redirect(f"/jobs/{info.spec.job_id}", code=303)
