"""GET /v1/alerts, GET /v1/alerts/{id}, POST /v1/alerts/{id}/feedback.

A rep key reads its rep's alerts only, without those of the detectors it muted unless it
asks (`muted=true`); a manager key scoped to a team reads that team's. An alert outside
the caller's scope answers 404, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from sia.access.keys import Principal
from sia.api.deps import Caller, Service
from sia.api.schemas import AlertDetail, AlertPage, FeedbackIn, FeedbackOut
from sia.detectors.base import registered
from sia.feedback.record import UnknownAlert
from sia.service.alerts import AlertFilter, BadCursor, get_alert, list_alerts, readable

router = APIRouter(tags=["alerts"])


def scoped(who: Principal, rep: str | None, team: str | None) -> tuple[str | None, str | None]:
    """The rep and team filters a key may use: its own scope, never another's."""
    if who.role == "rep":
        if rep is not None and rep != who.rep_id:
            raise HTTPException(403, f"a rep key reads rep {who.rep_id}'s alerts only")
        return who.rep_id, team
    if who.role == "manager" and who.team is not None:
        if team is not None and team != who.team:
            raise HTTPException(403, f"this manager key reads team {who.team}'s alerts only")
        return rep, who.team
    return rep, team


@router.get("/v1/alerts", response_model=AlertPage)
async def alerts(
    service: Service, who: Caller,
    detector: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    rep: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["pending", "routed", "history"] | None = None,
    severity: Literal["low", "medium", "high"] | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    muted: bool = False,
) -> AlertPage:
    """Alerts newest first, a page at a time (`next_cursor` gives the next). A rep key
    does not see the detectors it muted (PUT /v1/thresholds) unless `muted` is true: they
    are stored all the same, and never sent to the rep."""
    if detector is not None and detector not in registered():
        raise HTTPException(422, f"unknown detector {detector!r}; known: "
                                 f"{', '.join(registered())}")
    rep, team = scoped(who, rep, team)
    hidden: frozenset[str] = frozenset()
    if who.role == "rep" and who.rep_id and not muted:
        current = await run_in_threadpool(service.thresholds.current)
        hidden = frozenset((current.config.policy.get("mute") or {}).get(who.rep_id) or ())
    where = AlertFilter(detector=detector, customer=customer, rep_id=rep, team=team,
                        status=status, severity=severity, since=since,
                        hidden_detectors=hidden)
    try:
        page = await run_in_threadpool(list_alerts, service.store, where, limit=limit,
                                       cursor=cursor)
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    return AlertPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


async def _readable_alert(service: Service, who: Principal, alert_id: str) -> dict[str, object]:
    found = await run_in_threadpool(get_alert, service.store, alert_id)
    rep, team = scoped(who, None, None)
    if found is None or not readable(found, rep_id=rep, team=team):
        raise HTTPException(404, f"no alert {alert_id!r}")
    return found


@router.get("/v1/alerts/{alert_id}", response_model=AlertDetail,
            responses={404: {"description": "No such alert (or not yours)."}})
async def alert(alert_id: str, service: Service, who: Caller) -> AlertDetail:
    """One alert: explanation, evidence, deliveries and feedback."""
    return AlertDetail.model_validate(await _readable_alert(service, who, alert_id))


@router.post("/v1/alerts/{alert_id}/feedback", response_model=FeedbackOut,
             responses={404: {"description": "No such alert (or not yours)."}})
async def feedback(alert_id: str, body: FeedbackIn, service: Service,
                   who: Caller) -> FeedbackOut:
    """Useful, not useful, done, or snooze 7 days: one verdict per alert and person (a
    repeat changes nothing, another verdict replaces it)."""
    await _readable_alert(service, who, alert_id)
    try:
        recorded = await run_in_threadpool(
            lambda: service.feedback.give(alert_id=alert_id, verdict=body.verdict,
                                          rep_id=who.rep_id, source="api",
                                          who=f"key:{who.key_id}"))
    except UnknownAlert:
        raise HTTPException(404, f"no alert {alert_id!r}") from None
    return FeedbackOut(alert_id=alert_id, verdict=body.verdict, outcome=recorded.outcome,
                       previous=recorded.previous)
