"""Feedback that arrives with its own proof: Slack's signed interactivity requests, and
the signed, expiring links in emails (confirmed with a button: mail scanners follow
links, so opening one records nothing)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sia.api.deps import Service
from sia.api.routes.events import read_limited
from sia.service.feedback import Malformed, NotConfigured, Refused, UnknownAlert

router = APIRouter(tags=["feedback"])
MAX_FORM = 1 << 20
LABELS = {"useful": "Useful", "not_useful": "Not useful", "done": "Done",
          "snooze_7d": "Snooze this customer for 7 days"}


@router.post("/slack/interactivity", responses={
    401: {"description": "Forged or stale request."},
    400: {"description": "Not an interactivity payload."},
    404: {"description": "A button about an alert that is not in the store."},
    503: {"description": "Slack feedback is not configured."}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {"payload": {"type": "string"}}}}}}})
async def slack(request: Request, service: Service) -> dict[str, int]:
    """Slack's block_actions: the Useful / Not useful / Snooze buttons."""
    body = await read_limited(request, MAX_FORM)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        recorded = await run_in_threadpool(service.feedback.slack, headers, body)
    except NotConfigured as exc:
        raise HTTPException(503, str(exc)) from None
    except Refused as exc:
        raise HTTPException(401, str(exc)) from None
    except Malformed as exc:
        raise HTTPException(400, str(exc)) from None
    except UnknownAlert as exc:
        raise HTTPException(404, str(exc)) from None
    return {"recorded": recorded}


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{content}</p></body></html>",
        status_code=status)


LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A link that is forged, expired or malformed (an HTML page)."},
    404: {"description": "The alert is not in the store (an HTML page)."}}


@router.get("/feedback/email", response_class=HTMLResponse, responses=LINK_ERRORS)
async def email_page(service: Service,
                     token: str = Query(default="", max_length=4000)) -> HTMLResponse:
    """The page an email's feedback link opens: a button to confirm."""
    try:
        claim = service.feedback.email_claim(token)
    except Refused as exc:
        return _page("This link cannot be used", html.escape(str(exc)), 400)
    form = (f'<form method="post" action="/feedback/email"><input type="hidden" '
            f'name="token" value="{html.escape(token)}"><button type="submit">'
            f"Confirm: {html.escape(LABELS.get(claim.verdict, claim.verdict))}</button></form>")
    return _page("Your feedback on this alert", form)


@router.post("/feedback/email", response_class=HTMLResponse, responses=LINK_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": {
                     "type": "object", "properties": {"token": {"type": "string"}}}}}}})
async def email_confirm(request: Request, service: Service) -> HTMLResponse:
    """Record what a confirmed link asks for."""
    from urllib.parse import parse_qs

    body = await read_limited(request, MAX_FORM)
    token = parse_qs(body.decode(errors="replace")).get("token", [""])[0]
    try:
        recorded = await run_in_threadpool(service.feedback.email_confirm, token)
    except Refused as exc:
        return _page("This link cannot be used", html.escape(str(exc)), 400)
    except UnknownAlert:
        return _page("Unknown alert", "", 404)
    said = "Your feedback was recorded." if recorded.outcome != "unchanged" \
        else "Your feedback was already recorded."
    return _page("Thank you", said)
