"""The console's Thresholds pages, for managers and admins: the effective values per
detector with their source, description, unit and allowed range; edit one, Preview what it
would have done (before/after alerts per week, added and removed alerts), Apply it with a
reason against the version seen; the history with diffs and a Rollback per version.

Everything goes through the service functions the /v1/thresholds routes call
(`ThresholdDesk.propose`, `.change`, `.rollback`, `.versions.history`, and
`sia.api.previews.preview_of`), so the console refuses what the API refuses, with the
API's words: a value that does not validate shows the 422 reason next to its field, a
moved-on version the 409 message. Plain forms: the proposed change and the version
travel in hidden fields (the version is the API's If-Match).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.api.authorization import SESSION_ROLES
from sia.api.console.pages import (
    HEADERS,
    ConsoleRefusal,
    csrf_for,
    read_form,
    render,
    signed_in,
    templates,
    to_sign_in,
)
from sia.api.deps import Service
from sia.api.previews import preview_of
from sia.config import ConfigError
from sia.service.runtime import Runtime
from sia.service.thresholds import Change, Conflict, Forbidden
from sia.thresholds.effective import effective

router = APIRouter(include_in_schema=False)
PREVIEW_DAYS = 90.0
HISTORY_SIZE = 50
MAX_REASON = 2000


def may(who: Principal | None, method: str, path: str) -> bool:
    """Whether this session's key may use this console page (for links and buttons)."""
    return who is not None and who.role in SESSION_ROLES.get((method, path), frozenset())


templates.globals["may"] = may


def _team_of(who: Principal, asked: str | None) -> str | None:
    """The team whose values a page shows: a team's manager's own; else the one asked
    for (none: the defaults)."""
    if who.role == "manager" and who.team is not None:
        if asked not in (None, "", who.team):
            raise ConsoleRefusal(403, f"this manager key tunes team {who.team}'s "
                                      "thresholds only")
        return who.team
    return (asked or "").strip() or None


def _can_roll_back(who: Principal) -> bool:
    # as ThresholdDesk.rollback decides: a rollback restores every team's thresholds
    return who.role == "admin" or (who.role == "manager" and who.team is None)


def _value(kind: str, text: str) -> float | int | bool:
    """A form's text as the threshold's type (ConfigError naming what is wrong)."""
    text = text.strip()
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind == "int":
            return int(text)
        return float(text)
    except ValueError:
        wanted = {"int": "a whole number", "bool": "true or false"}.get(kind, "a number")
        raise ConfigError(f"{text!r} is not {wanted}") from None


def _proposed(form: dict[str, str], detectors: dict[str, Any],
              team: str | None) -> tuple[Change, dict[str, Any]]:
    """The change a form proposes, and what it is about (for the page)."""
    detector, key = form.get("detector", ""), form.get("key", "")
    shown = (detectors.get(detector) or {}).get("thresholds", {}).get(key)
    if shown is None:
        raise ConsoleRefusal(422, f"no threshold {detector}.{key}")
    field = {"detector": detector, "key": key, "text": form.get("value", ""), **shown}
    value = _value(str(shown.get("type")), field["text"])
    return Change(detector, {key: value}, team, None, None, None), field


async def _view(service: Runtime, team: str | None) -> tuple[int, dict[str, Any]]:
    current = await run_in_threadpool(service.thresholds.current)
    return current.version, effective(current.config, team=team)


async def _thresholds_page(request: Request, service: Runtime, who: Principal,
                           csrf: str, team: str | None, *, status: int = 200,
                           field_error: dict[str, str] | None = None,
                           **context: Any) -> HTMLResponse:
    version, detectors = await _view(service, team)
    return render("thresholds.html", status=status, who=who, csrf=csrf, team=team,
                  version=version, detectors=detectors, field_error=field_error or {},
                  pick_team=not (who.role == "manager" and who.team is not None),
                  **context)


@router.get("/console/thresholds", response_class=HTMLResponse)
async def thresholds_page(request: Request, service: Service, team: str | None = None,
                          saved: str | None = None) -> Response:
    """Every detector's effective values for a team (or the defaults), with an edit
    form per value."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    team = _team_of(who, team)
    message = f"Applied as version {saved}." if saved and saved.isdigit() else None
    return await _thresholds_page(request, service, who, csrf_for(request, session),
                                  team, message=message)


@router.post("/console/thresholds/preview", response_class=HTMLResponse)
async def preview_page(request: Request, service: Service) -> Response:
    """What one changed value would have done over the journal's last 90 days; an Apply
    form carrying the change and the version it was previewed against."""
    signed = await signed_in(request, service)
    form = await read_form(request, signed[1].nonce if signed else None)
    assert signed is not None  # a form without a session has no valid token
    who, session = signed
    csrf = csrf_for(request, session)
    team = _team_of(who, form.get("team"))
    _, detectors = await _view(service, team)
    try:
        change, field = _proposed(form, detectors, team)
        result = await preview_of(service, [change], who, PREVIEW_DAYS, PREVIEW_DAYS)
    except (ConfigError, Forbidden) as exc:
        status = 403 if isinstance(exc, Forbidden) else 422
        return await _thresholds_page(
            request, service, who, csrf, team, status=status,
            field_error={"id": f"{form.get('detector')}.{form.get('key')}",
                         "text": form.get("value", ""), "message": str(exc)},
            error="The change was not previewed: see the message next to the field.")
    if "error" in result:
        return await _thresholds_page(request, service, who, csrf, team, status=409,
                                      error=result["error"])
    return render("threshold_preview.html", who=who, csrf=csrf, team=team, field=field,
                  value=change.set[field["key"]], version=result["version"],
                  result=result, chart=_chart(result))


@router.post("/console/thresholds/apply", response_class=HTMLResponse)
async def apply_change(request: Request, service: Service) -> Response:
    """Apply a previewed change with a reason, against the version it was previewed on
    (409 when it moved on)."""
    signed = await signed_in(request, service)
    form = await read_form(request, signed[1].nonce if signed else None)
    assert signed is not None
    who, session = signed
    csrf = csrf_for(request, session)
    team = _team_of(who, form.get("team"))
    _, detectors = await _view(service, team)
    expected = form.get("version", "")
    if not expected.isdigit() or len(expected) > 12:
        raise ConsoleRefusal(422, "the form does not name a thresholds version")
    reason = form.get("reason", "")[:MAX_REASON]
    try:
        change, field = _proposed(form, detectors, team)
        version = await run_in_threadpool(
            lambda: service.thresholds.change([change], expected=int(expected), who=who,
                                              reason=reason))
    except Conflict as exc:
        return await _thresholds_page(request, service, who, csrf, team, status=409,
                                      error=f"Not applied: {exc}")
    except (ConfigError, Forbidden) as exc:
        return await _thresholds_page(
            request, service, who, csrf, team,
            status=403 if isinstance(exc, Forbidden) else 422,
            field_error={"id": f"{form.get('detector')}.{form.get('key')}",
                         "text": form.get("value", ""), "message": str(exc)},
            error=f"Not applied: {exc}")
    query = {"team": team or ""}
    if version is None:
        return await _thresholds_page(request, service, who, csrf, team,
                                      message="Nothing changed: no new version.")
    query["saved"] = str(version.version)
    return RedirectResponse(f"/console/thresholds?{urlencode(query)}#{field['detector']}",
                            status_code=303, headers=HEADERS)


@router.get("/console/thresholds/history", response_class=HTMLResponse)
async def history_page(request: Request, service: Service,
                       rolled: str | None = None) -> Response:
    """The versions, newest first: who, when, why, the diff; a Rollback per version."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    message = f"Rolled back: now version {rolled}." if rolled and rolled.isdigit() else None
    return await _history_page(request, service, who, csrf_for(request, session),
                               message=message)


async def _history_page(request: Request, service: Runtime, who: Principal, csrf: str,
                        *, status: int = 200, **context: Any) -> HTMLResponse:
    versions = await run_in_threadpool(
        lambda: service.thresholds.versions.history(limit=HISTORY_SIZE))
    current = versions[0].version if versions else 0
    return render("threshold_history.html", status=status, who=who, csrf=csrf,
                  versions=[v.as_dict() for v in versions], current=current,
                  can_roll_back=_can_roll_back(who), **context)


@router.post("/console/thresholds/rollback", response_class=HTMLResponse)
async def rollback(request: Request, service: Service) -> Response:
    """A new version equal to an old one, with a reason (admins and unscoped managers)."""
    signed = await signed_in(request, service)
    form = await read_form(request, signed[1].nonce if signed else None)
    assert signed is not None
    who, session = signed
    csrf = csrf_for(request, session)
    target, expected = form.get("version", ""), form.get("expected", "")
    if not (target.isdigit() and expected.isdigit() and len(target + expected) <= 24):
        raise ConsoleRefusal(422, "the form does not name thresholds versions")
    reason = form.get("reason", "")[:MAX_REASON]
    try:
        version = await run_in_threadpool(
            lambda: service.thresholds.rollback(int(target), expected=int(expected),
                                                who=who, reason=reason))
    except (Conflict, ConfigError, Forbidden, LookupError) as exc:
        status = {Conflict: 409, Forbidden: 403}.get(type(exc), 422)
        if isinstance(exc, LookupError):
            status = 404
        return await _history_page(request, service, who, csrf, status=status,
                                   error=f"Not rolled back: {exc}")
    if version is None:
        return await _history_page(request, service, who, csrf,
                                   message=f"Nothing changed: version {expected} already "
                                           f"equals version {target}.")
    return RedirectResponse(f"/console/thresholds/history?rolled={version.version}",
                            status_code=303, headers=HEADERS)


CHART_W, BAR_H, GAP = 320, 14, 10


def _chart(result: dict[str, Any]) -> dict[str, Any]:
    """Bars of alerts per week before and after, in total and per detector, sized for an
    inline SVG (markup only: the CSP allows no script and no inline style)."""
    before, after = result["before"], result["after"]
    names = sorted(set(before["by_detector"]) | set(after["by_detector"]))
    rows = [("all detectors", before["alerts_per_week"], after["alerts_per_week"])]
    rows += [(n, before["by_detector"].get(n, {}).get("alerts_per_week", 0.0),
              after["by_detector"].get(n, {}).get("alerts_per_week", 0.0)) for n in names]
    top = max([b for _, b, _ in rows] + [a for _, _, a in rows] + [1e-9])
    label_w, bar_w = 110, CHART_W - 110 - 50
    bars, y = [], 4
    for name, b, a in rows:
        bars.append({"name": name, "y": y, "before": b, "after": a,
                     "wb": round(bar_w * b / top, 1), "wa": round(bar_w * a / top, 1)})
        y += 2 * BAR_H + GAP
    return {"width": CHART_W, "height": y, "label_w": label_w, "bar_h": BAR_H,
            "bars": bars}
