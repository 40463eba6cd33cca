"""The console's team view, customer page and rejected records.

Built like the inbox (sia/api/routes/console.py): a session whose role `SESSION_ROLES`
allows, Jinja2 templates (autoescaped: customer names and rejected records are CRM
data), no JavaScript. Each page reads through the service functions its API route uses
and is scoped as the API scopes the same key:
- GET /console/team: managers and admins; `scoped` of the alerts routes, so a team
  manager sees their team only. Alerts per week by rep and by detector as server-drawn
  SVG charts, each with a table of the same numbers; feedback shares; mutes and snoozes.
- GET /console/customers/{id}: `Runtime.customer` and `customer_readable`, the rules of
  GET /v1/customers/{id} (a rep their own customers; an unknown one is a 404 page).
- GET /console/rejects: admins; `reject_page`, as GET /v1/rejects, 100 a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sia.api.console.pages import (
    ConsoleRefusal,
    csrf_for,
    render,
    signed_in,
    to_sign_in,
)
from sia.api.deps import Service
from sia.api.routes.alerts import scoped
from sia.api.routes.feedback import LABELS
from sia.service.alerts import AlertFilter
from sia.service.customers import customer_readable
from sia.service.engine_process import EngineUnavailable
from sia.service.rejects import reject_page
from sia.service.team import VERDICTS, TeamReport, team_report

router = APIRouter(include_in_schema=False)
REJECTS_PAGE = 100
SERIES = 7  # series drawn in a chart; the rest are summed as "others"

# the chart's drawing box (SVG user units; the SVG scales to its container)
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 40


@dataclass(frozen=True)
class Bar:
    """One stacked segment: its series' index (its colour), place and count."""

    series: int
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart of counts per week, and the table of the same numbers."""

    title: str
    weeks: list[date]
    names: list[str]
    rows: list[list[int]]  # per week: a count per series, in `names` order
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value) of the y axis
    labels: list[tuple[float, str]]  # (x, text) of the weeks

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM


def _nice(top: int) -> int:
    """A round axis maximum at or above `top`."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if top <= step * 4:
            return step * 4
    return top


def chart(title: str, weeks: list[date], series: dict[str, list[int]]) -> Chart:
    """Stacked bars per week of `series` (the biggest `SERIES`, then the rest summed)."""
    ranked = sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    kept = ranked[:SERIES]
    if len(ranked) > SERIES:
        kept.append(("others", [sum(c) for c in zip(*(v for _, v in ranked[SERIES:]),
                                                      strict=True)]))
    names = [name for name, _ in kept]
    rows = [[counts[i] for _, counts in kept] for i in range(len(weeks))]
    top = _nice(max((sum(r) for r in rows), default=0) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(weeks), 1)
    bars: list[Bar] = []
    for w, row in enumerate(rows):
        base = 0
        for s, count in enumerate(row):
            if count:
                y0 = TOP + plot_h * (1 - (base + count) / top)
                bars.append(Bar(s, round(LEFT + w * slot + slot * 0.15, 1), round(y0, 1),
                                round(slot * 0.7, 1), round(plot_h * count / top, 1), count,
                                f"{names[s]}, week of {weeks[w]:%d %b}: {count}"))
            base += count
    ticks = [(round(TOP + plot_h * (1 - i / 4), 1), top * i // 4) for i in range(5)]
    labels = [(round(LEFT + (w + 0.5) * slot, 1), f"{d:%d %b}") for w, d in enumerate(weeks)]
    return Chart(title, weeks, names, rows, bars, ticks, labels)


@router.get("/console/team", response_class=HTMLResponse)
async def team_page(request: Request, service: Service) -> Response:
    """A manager's team (an admin's every team): alerts per week by rep and by
    detector over 12 weeks, feedback shares, mutes and snoozes."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    rep, team = scoped(who, None, None)

    def gather() -> TeamReport:
        mutes = service.thresholds.current().config.policy.get("mute") or {}
        return team_report(service.store, AlertFilter(rep_id=rep, team=team), mutes=mutes,
                           now=service.feedback.now())

    report = await run_in_threadpool(gather)
    charts = [chart("Alerts per week by rep", report.weeks, report.by_rep),
              chart("Alerts per week by detector", report.weeks, report.by_detector)]
    return render("team.html", who=who, csrf=csrf_for(request, session),
                  report=report, charts=charts, verdicts=[(v, LABELS[v]) for v in VERDICTS],
                  scope=f"team {team}" if team else "every team")


@router.get("/console/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(customer_id: str, request: Request, service: Service) -> Response:
    """What SIA learned of a customer: rhythm, recent orders, open alerts and why."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    try:
        found = await run_in_threadpool(service.customer, customer_id)
    except EngineUnavailable as exc:
        raise ConsoleRefusal(503, f"the engine cannot answer now: {exc}") from None
    if found is None or not customer_readable(found, who):
        raise ConsoleRefusal(404, f"SIA knows no customer {customer_id!r}"
                                  + (" of yours" if who.role != "admin" else ""))
    return render("customer.html", who=who, csrf=csrf_for(request, session),
                  c=found)


@router.get("/console/rejects", response_class=HTMLResponse)
async def rejects_page(request: Request, service: Service,
                       cursor: str | None = None) -> Response:
    """Rejected records, newest first, with their reason, 100 a page."""
    signed = await signed_in(request, service)
    if signed is None:
        return to_sign_in()
    who, session = signed
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 18):
        raise ConsoleRefusal(422, "that page link is broken: start from the newest rejects")
    page = await run_in_threadpool(lambda: reject_page(service.journal, cursor=cursor,
                                                       limit=REJECTS_PAGE))
    return render("rejects.html", who=who, csrf=csrf_for(request, session),
                  rejects=page.items, next_cursor=page.next_cursor, first=cursor is None)
