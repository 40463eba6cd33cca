"""The web console's pages: sign-in, sign-out, a rep's inbox and its feedback buttons.

Pages are Jinja2 templates (sia/api/console/templates, autoescaped: alert text comes from
CRM data) styled by one shipped stylesheet; plain forms, no JavaScript. A session cookie
(sia/api/console/session.py) stands for the API key signed in with; every POST checks the
form's CSRF token. The routes are public for the API's bearer check (ROUTE_ROLES) and
need a session whose role `SESSION_ROLES` allows. What a page shows is scoped exactly as
the API scopes the same key (`scoped` of the alerts routes), through the same service
functions.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sia.api.authorization import SESSION_ROLES
from sia.api.console.pages import (
    HEADERS,
    TITLES,
    ConsoleRefusal,
    console_state,
    csrf_for,
    is_secure,
    read_form,
    render,
    session_of,
    signed_in,
    to_sign_in,
)
from sia.api.console.session import (
    PRE_COOKIE,
    PRE_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleState,
    new_nonce,
)
from sia.api.deps import Service
from sia.api.routes.alerts import scoped
from sia.api.routes.feedback import LABELS
from sia.feedback.record import UnknownAlert, voter_of
from sia.service.alerts import AlertFilter, get_alert, inbox, readable
from sia.service.runtime import Runtime

router = APIRouter(include_in_schema=False)
INBOX_SIZE = 100
STATIC = {"console.css": "text/css; charset=utf-8"}


def install(app: FastAPI, runtime: Runtime | None) -> None:
    """Add the console to an app: its router, its state, its error pages."""
    if runtime is not None:
        app.state.console = ConsoleState(runtime.feedback.feedback_secret)
    app.include_router(router)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefusal)
        return render("error.html", status=exc.status, error=exc.message,
                      title=TITLES.get(exc.status, "Cannot do that"))

    app.add_exception_handler(ConsoleRefusal, refused)


def _sign_in_page(request: Request, *, error: str | None = None,
                  status: int = 200) -> HTMLResponse:
    nonce = request.cookies.get(PRE_COOKIE) or new_nonce()
    page = render("sign_in.html", status=status, who=None, error=error,
                  csrf=console_state(request).signer.csrf_token(nonce))
    page.set_cookie(PRE_COOKIE, nonce, max_age=PRE_SECONDS, path="/console", httponly=True,
                    samesite="lax", secure=is_secure(request))
    return page


@router.get("/console/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    """The sign-in form (an API key)."""
    if session_of(request) is not None:
        return RedirectResponse("/console", status_code=303, headers=HEADERS)
    return _sign_in_page(request)


@router.post("/console/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, service: Service) -> Response:
    """Check the key; a session cookie for it, then the inbox."""
    form = await read_form(request, request.cookies.get(PRE_COOKIE))
    key = form.get("key", "").strip()
    who = await run_in_threadpool(service.keys.authenticate, key) if key else None
    if who is None:
        return _sign_in_page(request, error="Unknown or revoked API key.", status=401)
    if who.role not in SESSION_ROLES[("GET", "/console")]:
        return _sign_in_page(request, error=f"A {who.role} key cannot use the console: "
                                            "sign in with a rep, manager or admin key.",
                             status=403)
    cookie, _ = console_state(request).signer.session_cookie(who.key_id)
    response = RedirectResponse("/console", status_code=303, headers=HEADERS)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, path="/console",
                        httponly=True, samesite="lax", secure=is_secure(request))
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (its cookie stops working here at once, even a copy)."""
    session = session_of(request)
    await read_form(request, session.nonce if session else None)
    assert session is not None  # a form without a session has no valid token
    console_state(request).signed_out.add(session)
    response = to_sign_in()
    response.delete_cookie(SESSION_COOKIE, path="/console", httponly=True, samesite="lax",
                           secure=is_secure(request))
    return response


@router.get("/console", response_class=HTMLResponse)
async def inbox_page(request: Request, service: Service,
                     saved: str | None = None) -> Response:
    """The inbox: a rep's own alerts with feedback buttons; a manager's team's or an
    admin's every alert, read only."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    rep, team = scoped(who, None, None)
    voter = voter_of(who.rep_id, f"key:{who.key_id}")
    alerts = await run_in_threadpool(inbox, service.store, AlertFilter(rep_id=rep, team=team),
                                     voter=voter, limit=INBOX_SIZE)
    can_act = who.role in SESSION_ROLES[("POST", "/console/alerts/{alert_id}/feedback")]
    message = f"Saved: {LABELS[saved]}." if saved in LABELS else None
    return render("inbox.html", who=who, csrf=csrf_for(request, session),
                  alerts=alerts, can_act=can_act, verdicts=LABELS, message=message)


@router.post("/console/alerts/{alert_id}/feedback")
async def give_feedback(alert_id: str, request: Request, service: Service) -> Response:
    """A feedback button: the same verdict the API records (source `console`)."""
    signed = await signed_in(request, service)
    form = await read_form(request, signed[1].nonce if signed else None)
    assert signed is not None  # a form without a session has no valid token
    who, _ = signed
    verdict = form.get("verdict", "")
    if verdict not in LABELS:
        raise ConsoleRefusal(422, f"no such feedback: choose one of {', '.join(LABELS)}")
    found = await run_in_threadpool(get_alert, service.store, alert_id)
    rep, team = scoped(who, None, None)
    if found is None or not readable(found, rep_id=rep, team=team):
        raise ConsoleRefusal(404, "no such alert (or not yours)")
    try:
        await run_in_threadpool(
            lambda: service.feedback.give(alert_id=alert_id, verdict=verdict,
                                          rep_id=who.rep_id, source="console",
                                          who=f"key:{who.key_id}"))
    except UnknownAlert:
        raise ConsoleRefusal(404, "no such alert") from None
    return RedirectResponse(f"/console?saved={verdict}#alert-{alert_id}", status_code=303,
                            headers=HEADERS)


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    """The console's stylesheet, from the installed package."""
    media = STATIC.get(name)
    if media is None:
        raise ConsoleRefusal(404, "no such file")
    body = (files("sia.api.console") / "static" / name).read_bytes()
    return Response(body, media_type=media, headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
