"""What every console page shares: rendering with the console's headers, the signed-in
key, the CSRF-checked form, the refusal page. The page routes are sia/api/routes/console*.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader
from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.api.authorization import SESSION_ROLES
from sia.api.console.session import CSRF_FIELD, SESSION_COOKIE, ConsoleState, Session
from sia.api.routes.events import read_limited
from sia.service.runtime import Runtime

MAX_FORM = 16 * 1024
TITLES = {403: "Refused", 404: "Not found", 422: "Not understood", 503: "Unavailable"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
templates = Environment(loader=PackageLoader("sia.api.console", "templates"),
                        autoescape=True, auto_reload=False)
# the pages the header links to, each shown only to the roles SESSION_ROLES lets open it
NAV = [("/console", "Inbox"), ("/console/team", "Team"), ("/console/thresholds", "Thresholds"),
       ("/console/rejects", "Rejects")]


def pages_for(who: Principal) -> list[tuple[str, str]]:
    return [(path, label) for path, label in NAV
            if who.role in SESSION_ROLES.get(("GET", path), frozenset())]


templates.globals["pages"] = pages_for


class ConsoleRefusal(Exception):
    """A console request refused: answered with an HTML page, not the API's JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState | None = getattr(request.app.state, "console", None)
    if state is None:
        raise ConsoleRefusal(503, "no service behind this app")
    return state


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(template).render(**context),
                        status_code=status, headers=HEADERS)


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def session_of(request: Request) -> Session | None:
    state = console_state(request)
    session = state.signer.read_session(request.cookies.get(SESSION_COOKIE))
    return None if session is None or session in state.signed_out else session


async def signed_in(request: Request, service: Runtime) -> tuple[Principal, Session] | None:
    """The session's key, when signed in with one that still works; refused (403) when
    its role may not use this route."""
    session = session_of(request)
    if session is None:
        return None
    who = await run_in_threadpool(service.keys.active, session.key_id)
    if who is None:
        return None
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    roles = SESSION_ROLES.get((method, getattr(route, "path", "")), frozenset())
    if who.role not in roles:
        raise ConsoleRefusal(403, f"a {who.role} key may not use this page")
    return who, session


def check_origin(request: Request) -> None:
    """A POST that says it comes from another site is refused, token or not."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ConsoleRefusal(403, "this form was sent from another site")


async def read_form(request: Request, nonce: str | None) -> dict[str, str]:
    """The POSTed form, once its CSRF token is checked against `nonce` (403 if not)."""
    check_origin(request)
    body = await read_limited(request, MAX_FORM)
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    if not console_state(request).signer.csrf_ok(nonce, form.get(CSRF_FIELD)):
        raise ConsoleRefusal(403, "this form has expired or did not come from this "
                                  "console: reload the page and try again")
    return form


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/sign-in", status_code=303, headers=HEADERS)


def csrf_for(request: Request, session: Session) -> str:
    """The CSRF token a page's forms carry for this session."""
    return console_state(request).signer.csrf_token(session.nonce)
