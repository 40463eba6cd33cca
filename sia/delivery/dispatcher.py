"""Noise control between stored alerts and the outbox.

`route_pending(now)` gives every new alert its recipients (through the routing tree) and
a disposition per recipient: held by a snooze or mute (or by a rep's mute of a detector,
a thresholds setting: `mutes`), into the daily digest (low severity), or into a grouping
window (several alerts about one account inside it become one message), due after the
recipient's quiet hours. `plan(now)` turns what is due into outbox messages: windows
that closed become messages until the rep's daily budget is spent, the rest (lowest
priority first) is shed into the digest, never silently; digests go out at the
recipient's digest time; a notice tells a rep their snooze ended.

Every noise control runs on `now`, the time of routing and sending, never on the time
the alert's events happened: a window opens when its first alert is routed (as
Alertmanager's group_wait), quiet hours and the daily budget are those of the day a
message goes out, and a snooze holds what is routed while it lasts. An alert is routed
once `now` has reached its time; one about events more than `max_age` before `now` (a
replay or backfill of history; SIA_DELIVERY_MAX_AGE_DAYS, 2 days) becomes "history":
stored, never sent to people.

Everything is read from and written to the store in one transaction per step, so the
dispatcher keeps no state of its own: after a crash it continues where the store says.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.catalog import Catalog
from sia.delivery.schedule import after_quiet_hours, local_day, next_local
from sia.delivery.tables import AlertRoute, OutboxMessage, Snooze
from sia.findings import SEVERITY_RANK
from sia.notifiers.base import Recipient
from sia.policy.mutes import Mutes, is_muted
from sia.routing.tree import RouteSettings

DEFAULTS: dict[str, Any] = RouteSettings().as_stored()  # the routing tree's root defaults


class Routed(Protocol):
    """One recipient of an alert, with the route's settings (see sia/routing)."""

    @property
    def recipient(self) -> Recipient:
        """Who, and where."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """group_wait_minutes, digest_below, daily_budget, quiet_hours, digest_at."""
        ...

    @property
    def why(self) -> str:
        """Why this recipient, in words."""
        ...


Router = Callable[[AlertRecord, Catalog], Sequence[Routed]]
Priority = Callable[[AlertRecord, str | None], float]


def default_priority(alert: AlertRecord, rep_id: str | None) -> float:
    """Severity first, then score, then money at stake."""
    return SEVERITY_RANK.get(alert.severity, 0) + alert.score + math.log1p(max(alert.value, 0)) / 20


def message_id(channel: str, address: str, kind: str, alert_ids: Iterable[str],
               extra: str = "") -> str:
    """Deterministic id: the same alerts to the same recipient give the same message."""
    raw = "|".join([channel, address, kind, *sorted(alert_ids), extra]).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Dispatcher:
    """From stored alerts to outbox messages, with every noise control on the way."""

    def __init__(self, store: AlertStore, router: Router, catalog: Catalog, *,
                 priority: Priority = default_priority,
                 max_age: timedelta | None = None) -> None:
        self.store = store
        self.router = router
        self.catalog = catalog
        self.priority = priority
        # detectors muted per rep (sia.policy.mutes), as the current thresholds say
        self.mutes: Mutes = {}
        self.max_age = max_age if max_age is not None else default_max_age()
        if self.max_age <= timedelta(0):
            raise ValueError(f"max_age must be a positive time, got {self.max_age}")
        self.history = 0  # alerts the last route_pending kept as history

    # routing
    def route_pending(self, now: datetime) -> int:
        """Route every pending alert whose time `now` has reached; returns how many.

        Alerts about events more than `max_age` before `now` become history instead (their
        number is in `self.history`); alerts later than `now` wait for a later call.
        """
        _aware(now)
        with Session(self.store.engine) as session, session.begin():
            cutoff = self._cutoff(now)
            self.history = 0
            if cutoff is not None:
                result = session.execute(update(AlertRecord).where(
                    AlertRecord.status == "pending", AlertRecord.occurred_at < cutoff)
                    .values(status="history"))
                self.history = int(result.rowcount or 0)  # type: ignore[attr-defined]
            alerts = session.scalars(select(AlertRecord).where(
                AlertRecord.status == "pending", AlertRecord.occurred_at <= now)
                .order_by(AlertRecord.occurred_at, AlertRecord.alert_id))
            count = 0
            for alert in alerts:
                for routed in self.router(alert, self.catalog):
                    session.add(self._disposition(session, alert, routed, now))
                alert.status = "routed"
                count += 1
                session.flush()
            return count

    def _cutoff(self, now: datetime) -> datetime | None:
        """Alerts about events before this are history; None: no cut-off (max_age huge)."""
        try:
            return now - self.max_age
        except OverflowError:
            return None

    def _disposition(self, session: Session, alert: AlertRecord, routed: Routed,
                     now: datetime) -> AlertRoute:
        settings = {**DEFAULTS, **dict(routed.settings)}
        r = routed.recipient
        at = now  # the time of routing, not of the events: a replay must not skip the wait
        route = AlertRoute(alert_id=alert.alert_id, channel=r.channel, address=r.address,
                           recipient_name=r.name, rep_id=r.rep_id, timezone=r.timezone,
                           settings=settings, why=routed.why, routed_at=at,
                           priority=self.priority(alert, r.rep_id),
                           group_key=f"{alert.subject_kind}:{alert.subject_id}")
        hold = self._snooze_for(session, alert, r.rep_id, at)
        if is_muted(self.mutes, r.rep_id, alert.detector):
            route.disposition, route.due_at = "muted", at  # kept, never sent
            route.why = f"{route.why}; muted by rep {r.rep_id} for {alert.detector}"
        elif hold is not None:
            route.disposition = "muted" if hold.kind == "mute" else "snoozed"
            route.due_at = hold.until
        elif SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK.get(
                str(settings["digest_below"]), 0):
            route.disposition = "digest"
            route.due_at = next_local(at, str(settings["digest_at"]), r.timezone)
        else:
            route.disposition = "grouped"
            open_window = session.scalars(select(AlertRoute).where(
                AlertRoute.channel == r.channel, AlertRoute.address == r.address,
                AlertRoute.group_key == route.group_key, AlertRoute.disposition == "grouped",
                AlertRoute.message_id.is_(None))).first()
            if open_window is not None:
                route.due_at = open_window.due_at  # joins the account's open window
            else:
                wait = timedelta(minutes=float(settings["group_wait_minutes"]))
                route.due_at = after_quiet_hours(at + wait, settings["quiet_hours"],
                                                 r.timezone)
        return route

    def _snooze_for(self, session: Session, alert: AlertRecord, rep_id: str | None,
                    at: datetime) -> Snooze | None:
        targets = [("customer", alert.subject_id), ("alert", alert.dedup_key),
                   ("detector", alert.detector)]
        for snooze in session.scalars(select(Snooze).where(Snooze.until > at)
                                      .order_by(Snooze.id)):
            if (snooze.scope, snooze.target) in targets and snooze.rep_id in (None, rep_id) \
                    and snooze.created_at <= at:
                return snooze
        return None

    # planning
    def plan(self, now: datetime) -> int:
        """Create outbox messages for everything due by `now`; returns how many."""
        _aware(now)
        with Session(self.store.engine) as session, session.begin():
            created = self._plan_windows(session, now)
            created += self._plan_digests(session, now)
            created += self._plan_snooze_notices(session, now)
            return created

    def _plan_windows(self, session: Session, now: datetime) -> int:
        due = session.scalars(select(AlertRoute).where(
            AlertRoute.disposition == "grouped", AlertRoute.message_id.is_(None),
            AlertRoute.due_at <= now).order_by(AlertRoute.due_at, AlertRoute.alert_id))
        windows: dict[tuple[str, str, str, datetime], list[AlertRoute]] = defaultdict(list)
        for route in due:
            windows[(route.channel, route.address, route.group_key, route.due_at)].append(route)
        # within a rep's day (the day of sending), the most relevant windows get the budget
        by_day: dict[tuple[str, str, str], list[list[AlertRoute]]] = defaultdict(list)
        for (channel, address, _, _), routes in windows.items():
            first = routes[0]
            resume = after_quiet_hours(now, first.settings.get("quiet_hours"), first.timezone)
            if resume > now:  # closed before the quiet hours, planned inside them: wait
                for route in routes:
                    route.due_at = resume
                continue
            by_day[(channel, address, local_day(now, first.timezone))].append(routes)
        created = 0
        for (channel, address, day), groups in sorted(by_day.items()):
            budget = int(groups[0][0].settings["daily_budget"])
            used = self._used_budget(session, channel, address, day)
            groups.sort(key=lambda g: (-max(r.priority for r in g), g[0].due_at, g[0].alert_id))
            for routes in groups:
                if used < budget:
                    created += self._message(session, routes, "alert" if len(routes) == 1
                                             else "group", now, budget_day=day)
                    used += 1
                else:
                    for route in routes:  # over budget: into the digest, never silently
                        route.disposition = "shed"
                        route.due_at = next_local(now, str(route.settings["digest_at"]),
                                                  route.timezone)
        return created

    def _used_budget(self, session: Session, channel: str, address: str, day: str) -> int:
        return len(session.scalars(select(OutboxMessage.message_id).where(
            OutboxMessage.channel == channel, OutboxMessage.address == address,
            OutboxMessage.budget_day == day)).all())

    def _plan_digests(self, session: Session, now: datetime) -> int:
        due = session.scalars(select(AlertRoute).where(
            AlertRoute.disposition.in_(["digest", "shed"]), AlertRoute.message_id.is_(None),
            AlertRoute.due_at <= now).order_by(AlertRoute.due_at, AlertRoute.alert_id))
        by_recipient: dict[tuple[str, str, datetime], list[AlertRoute]] = defaultdict(list)
        for route in due:
            by_recipient[(route.channel, route.address, route.due_at)].append(route)
        created = 0
        for routes in by_recipient.values():
            routes.sort(key=lambda r: (-r.priority, r.alert_id))
            created += self._message(session, routes, "digest", now)
        return created

    def _plan_snooze_notices(self, session: Session, now: datetime) -> int:
        ended = session.scalars(select(Snooze).where(Snooze.until <= now,
                                                     Snooze.ended_notice.is_(False)))
        created = 0
        for snooze in ended:
            snooze.ended_notice = True
            held = list(session.scalars(select(AlertRoute).where(
                AlertRoute.disposition == "snoozed", AlertRoute.due_at == snooze.until,
                AlertRoute.message_id.is_(None))))
            rep = self.catalog.reps.get(snooze.rep_id or "")
            recipient = self._notice_recipient(snooze, held, rep)
            if recipient is None:
                continue
            what = {"customer": f"customer {snooze.target}", "alert": "that alert",
                    "detector": f"{snooze.target} alerts"}[snooze.scope]
            text = (f"Your {snooze.kind} of {what} ended ({snooze.who}, "
                    f"{snooze.created_at.date()}: {snooze.why or 'no reason given'}). "
                    f"{len(held)} alert{'s' if len(held) != 1 else ''} arrived meanwhile.")
            ids = [r.alert_id for r in held]
            mid = message_id(recipient.channel, recipient.address, "notice", ids,
                             extra=f"snooze-{snooze.id}")
            for route in held:
                route.message_id = mid
            session.add(OutboxMessage(
                message_id=mid, channel=recipient.channel, address=recipient.address,
                recipient_name=recipient.name, rep_id=recipient.rep_id,
                timezone=recipient.timezone, kind="notice",
                subject=f"Snooze ended: {what}", alert_ids=ids, text=text, status="queued",
                attempts=0, next_attempt_at=snooze.until, detected_at=snooze.until,
                created_at=now))
            created += 1
        return created

    def _notice_recipient(self, snooze: Snooze, held: list[AlertRoute],
                          rep: Any) -> Recipient | None:
        if held:
            first = held[0]
            return Recipient(first.channel, first.address, first.recipient_name,  # type: ignore[arg-type]
                             first.rep_id, first.timezone)
        if rep is not None and rep.slack_user_id:
            return Recipient("slack", rep.slack_user_id, rep.name or rep.rep_id, rep.rep_id,
                             rep.timezone or "UTC")
        if rep is not None and rep.email:
            return Recipient("email", rep.email, rep.name or rep.rep_id, rep.rep_id,
                             rep.timezone or "UTC")
        return None

    def _message(self, session: Session, routes: list[AlertRoute], kind: str, now: datetime,
                 budget_day: str = "") -> int:
        first = routes[0]
        ids = [r.alert_id for r in routes]
        mid = message_id(first.channel, first.address, kind, ids)
        alerts = {a.alert_id: a for a in session.scalars(
            select(AlertRecord).where(AlertRecord.alert_id.in_(ids)))}
        for route in routes:
            route.message_id = mid
        if session.get(OutboxMessage, mid) is not None:
            return 0
        titles = [alerts[i].title for i in ids]
        if kind == "digest":
            shed = sum(1 for r in routes if r.disposition == "shed")
            subject = f"Daily digest: {len(ids)} alert{'s' if len(ids) != 1 else ''}" + (
                f" ({shed} over your daily budget)" if shed else "")
        elif kind == "group":
            subject = f"{len(ids)} alerts about {alerts[ids[0]].subject_id}: {titles[0]}"
        else:
            subject = titles[0]
        session.add(OutboxMessage(
            message_id=mid, channel=first.channel, address=first.address,
            recipient_name=first.recipient_name, rep_id=first.rep_id,
            timezone=first.timezone, kind=kind, subject=subject, alert_ids=ids,
            budget_day=budget_day, status="queued",
            attempts=0, next_attempt_at=max(r.due_at for r in routes),
            detected_at=min(alerts[i].stored_at for i in ids), created_at=now))
        return 1


def default_max_age() -> timedelta:
    """How old an alert's events may be and still reach people (SIA_DELIVERY_MAX_AGE_DAYS)."""
    from sia.settings import get_settings

    return timedelta(days=get_settings().delivery_max_age_days)


def _aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must carry a time zone, got {now!r}")


def snooze(store: AlertStore, *, scope: str, target: str, who: str, why: str,
           until: datetime, now: datetime, rep_id: str | None = None,
           kind: str = "snooze") -> int:
    """Snooze (notice when it ends) or mute (silent) alerts about a target; returns its id."""
    if scope not in ("customer", "alert", "detector"):
        raise ValueError(f"scope must be customer, alert or detector, not {scope!r}")
    if kind not in ("snooze", "mute"):
        raise ValueError(f"kind must be snooze or mute, not {kind!r}")
    if until <= now:
        raise ValueError("until must be in the future")
    with Session(store.engine) as session, session.begin():
        record = Snooze(scope=scope, target=target, rep_id=rep_id, kind=kind, who=who,
                        why=why, until=until, created_at=now, ended_notice=kind == "mute")
        session.add(record)
        session.flush()
        return record.id
