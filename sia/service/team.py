"""A manager's view of a team: alerts per week by rep and by detector, how the team
answered them, and what its reps muted or snoozed.

Scoped like every read of alerts (`AlertFilter.rep_id` / `team` carry a key's scope). The
weeks are whole ISO weeks (Monday to Sunday, UTC) up to the one holding the newest alert
in scope, so a replayed history shows its own last weeks rather than empty ones before
the wall clock. A rep's team is what their stored alerts say (as for reps' own
thresholds, `sia.service.rep_thresholds.team_of_rep`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.tables import FeedbackRecord, Snooze
from sia.service.alerts import AlertFilter, conditions

WEEKS = 12
VERDICTS = ("useful", "not_useful", "done", "snooze_7d")
NOBODY = "(no rep)"


@dataclass(frozen=True)
class TeamReport:
    """What the team page shows; `weeks` are the Mondays, oldest first, and every series
    has one count per week."""

    weeks: list[date]
    by_rep: dict[str, list[int]]
    by_detector: dict[str, list[int]]
    total: list[int]
    feedback: dict[str, int]  # verdict -> how many, for the alerts of these weeks
    answered: int  # alerts of these weeks with at least one verdict
    muted: list[tuple[str, str]]  # (rep, detector), sorted
    snoozed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        """Alerts in these weeks."""
        return sum(self.total)

    def share(self, verdict: str) -> float:
        """The share of all verdicts that are `verdict` (0 without any)."""
        given = sum(self.feedback.values())
        return self.feedback.get(verdict, 0) / given if given else 0.0


def monday(day: datetime) -> date:
    """The Monday of the ISO week holding `day` (in UTC)."""
    d = day.astimezone(UTC).date()
    return d - timedelta(days=d.weekday())


def team_report(store: AlertStore, where: AlertFilter, *, mutes: dict[str, Any],
                now: datetime, weeks: int = WEEKS) -> TeamReport:
    """The report for the alerts `where` allows (a key's scope); `mutes` is the
    policy's rep -> muted detectors, `now` the time snoozes are judged at."""
    scope = conditions(where)
    with Session(store.engine) as session:
        newest = session.scalar(select(func.max(AlertRecord.occurred_at)).where(*scope))
        last = monday(newest if newest is not None else now)
        first = last - timedelta(weeks=weeks - 1)
        mondays = [first + timedelta(weeks=i) for i in range(weeks)]
        start = datetime.combine(first, datetime.min.time(), UTC)
        in_window = [*scope, AlertRecord.occurred_at >= start]
        rows = session.execute(select(AlertRecord.occurred_at, AlertRecord.rep_id,
                                      AlertRecord.detector).where(*in_window)).all()
        ids = select(AlertRecord.alert_id).where(*in_window)
        verdicts = Counter(dict(session.execute(
            select(FeedbackRecord.verdict, func.count()).where(
                FeedbackRecord.alert_id.in_(ids)).group_by(FeedbackRecord.verdict)).all()))
        answered = session.scalar(select(func.count(func.distinct(FeedbackRecord.alert_id)))
                                  .where(FeedbackRecord.alert_id.in_(ids))) or 0
        # each rep's team as their newest alert says (the newest pair comes last)
        teams = {rep: t for rep, t, _ in session.execute(
            select(AlertRecord.rep_id, AlertRecord.team, func.max(AlertRecord.occurred_at))
            .where(AlertRecord.rep_id.is_not(None))
            .group_by(AlertRecord.rep_id, AlertRecord.team)
            .order_by(func.max(AlertRecord.occurred_at))).all()}
        snoozes = list(session.scalars(select(Snooze).where(Snooze.until > now)
                                       .order_by(Snooze.until)))
    index = {m: i for i, m in enumerate(mondays)}
    by_rep: dict[str, list[int]] = {}
    by_detector: dict[str, list[int]] = {}
    total = [0] * weeks
    for at, rep, detector in rows:
        i = index[monday(at)]
        by_rep.setdefault(rep or NOBODY, [0] * weeks)[i] += 1
        by_detector.setdefault(detector, [0] * weeks)[i] += 1
        total[i] += 1

    def ours(rep: str | None) -> bool:
        if rep is None:  # for everyone: an unscoped key's business
            return where.rep_id is None and where.team is None
        if where.rep_id is not None and rep != where.rep_id:
            return False
        return where.team is None or teams.get(rep) == where.team

    muted = sorted((rep, str(d)) for rep, detectors in (mutes or {}).items()
                   if ours(rep) for d in detectors or ())
    snoozed = [{"scope": s.scope, "target": s.target, "rep_id": s.rep_id, "kind": s.kind,
                "who": s.who, "why": s.why, "until": s.until} for s in snoozes
               if ours(s.rep_id)]
    return TeamReport(mondays, dict(sorted(by_rep.items())), dict(sorted(by_detector.items())),
                      total, {v: verdicts.get(v, 0) for v in VERDICTS}, answered, muted,
                      snoozed)
