"""Turn matched routes into recipients: who exactly gets an alert, through what, and why.

People are reached through their preferred channel: a Slack DM when the rep has a Slack
user id, else email. A customer alert whose owner rep is unknown or unreachable goes to
the team channel instead (the owner's team, else the `default` channel). Alerts about a
rep (their performance) are private: they reach only the rep and their manager, and a
person who cannot be reached is skipped with a note rather than posted to a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sia.catalog import Catalog
from sia.events.models import Customer, Rep
from sia.notifiers.base import Recipient
from sia.policy.policy import Alert
from sia.routing.receivers import Receiver, TeamChannels
from sia.routing.tree import Route, RouteMatch, RouteSettings


@dataclass(frozen=True)
class Routed:
    """One recipient of an alert, with the settings and route that sent it there, and why."""

    recipient: Recipient
    settings: RouteSettings
    route: str  # path of the matching node, e.g. "root/performance"
    why: str  # e.g. "owner rep of customer 12345 (Priya Shah, team UK) via Slack DM"
    receiver: str = ""  # name of the receiver in routing.yaml


@dataclass(frozen=True)
class Resolution:
    """Recipients in order, and notes on receivers that reached nobody or a duplicate."""

    routed: tuple[Routed, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """What the reference data says about an alert's subject."""

    kind: str
    id: str
    customer_id: str | None = None
    customer: Customer | None = None
    owner: Rep | None = None  # the customer's owner rep
    rep: Rep | None = None  # the rep an alert about a rep is about
    team: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        """Alerts about a rep never fall back to a shared channel."""
        return self.kind == "rep"


def subject_of(alert: Alert, catalog: Catalog) -> Subject:
    """Customer, owner rep, subject rep and team of an alert, from the catalog and facts."""
    f = alert.finding
    facts = f.facts
    customer_id = f.subject_id if f.subject_kind == "customer" else _text(facts.get("customer_id"))
    customer = catalog.customers.get(customer_id) if customer_id else None
    owner = catalog.owner_rep(customer_id) if customer_id else None
    rep = catalog.reps.get(f.subject_id) if f.subject_kind == "rep" else None
    team = f.subject_id if f.subject_kind == "team" else (
        (owner.team if owner else None) or (rep.team if rep else None)
        or _text(facts.get("team")))
    return Subject(f.subject_kind, f.subject_id, customer_id, customer, owner, rep, team,
                   dict(facts))


def alert_attributes(alert: Alert, catalog: Catalog) -> dict[str, str | None]:
    """The attributes routes match on (segment, team, region from the reference data)."""
    f, subject = alert.finding, subject_of(alert, catalog)
    customer = subject.customer
    return {
        "detector": f.detector, "kind": f.kind, "severity": f.severity.value,
        "subject_kind": f.subject_kind, "team": subject.team,
        "segment": (customer.segment if customer else None) or _text(f.facts.get("segment")),
        "region": (customer.region if customer else None) or _text(f.facts.get("region")),
    }


def route_alert(root: Route, alert: Alert, catalog: Catalog) -> list[Routed]:
    """Match the alert against the tree and resolve the recipients."""
    return resolve(root.match(alert_attributes(alert, catalog)), alert, catalog)


def resolve(matches: Sequence[RouteMatch], alert: Alert, catalog: Catalog) -> list[Routed]:
    """Recipients of the matched routes, first one kept per (channel, address), in order."""
    return list(resolve_with_notes(matches, alert, catalog).routed)


def resolve_with_notes(matches: Sequence[RouteMatch], alert: Alert,
                       catalog: Catalog) -> Resolution:
    """Like resolve, and say which receivers reached nobody and which were duplicates."""
    subject = subject_of(alert, catalog)
    routed: dict[tuple[str, str], Routed] = {}
    notes: list[str] = []
    for match in matches:
        if not match.receivers:
            notes.append(f"route {match.path} has no receivers: it delivers nowhere")
        for receiver in match.receivers:
            for recipient, why in _recipients(receiver, subject, catalog):
                if recipient is None:
                    notes.append(f"{receiver.name} (route {match.path}): nobody: {why}")
                    continue
                key = (recipient.channel, recipient.address)
                if key in routed:
                    first = routed[key]
                    notes.append(f"{receiver.name} (route {match.path}): {recipient.channel} "
                                 f"{recipient.address} already gets it via {first.receiver} "
                                 f"(route {first.route}); not sent twice")
                    continue
                routed[key] = Routed(recipient, match.settings, match.path, why, receiver.name)
    return Resolution(tuple(routed.values()), tuple(notes))


_Candidate = tuple[Recipient | None, str]


def _recipients(receiver: Receiver, subject: Subject, catalog: Catalog) -> list[_Candidate]:
    kind, channels = receiver.kind, receiver.team_channels
    if kind == "owner_rep":
        return [_owner_rep(subject, channels)]
    if kind == "rep":
        return [_subject_rep(subject, channels)]
    if kind == "manager":
        return [_manager(subject, catalog, channels)]
    if kind == "team_channel":
        recipient, where = _team_channel(subject.team, channels, _tz(subject.owner or subject.rep))
        return [(recipient, where)]
    if kind == "slack_channel":
        return [(Recipient("slack", receiver.target, receiver.target),
                 f"Slack channel {receiver.target} (receiver {receiver.name})")]
    if kind == "email":
        return [(Recipient("email", receiver.target, receiver.target),
                 f"email {receiver.target} (receiver {receiver.name})")]
    if kind == "webhook":
        return [(Recipient("webhook", receiver.target, receiver.name),
                 f"webhook {receiver.target} (receiver {receiver.name})")]
    return [(Recipient("console", "-", "console"), f"console (receiver {receiver.name})")]


def _owner_rep(subject: Subject, channels: TeamChannels) -> _Candidate:
    if subject.kind == "rep":
        return _subject_rep(subject, channels)
    cid = subject.customer_id
    if cid is None:
        reason = f"a {subject.kind} alert has no owner rep"
    elif subject.customer is None:
        reason = f"customer {cid} is not in the customer reference data"
    elif subject.customer.owner_rep_id is None:
        reason = f"customer {cid} has no owner rep"
    elif subject.owner is None:
        reason = (f"owner rep {subject.customer.owner_rep_id} of customer {cid} is not in the "
                  "rep reference data")
    else:
        return _person(subject.owner, f"owner rep of customer {cid}", subject, channels)
    recipient, where = _team_channel(subject.team, channels, "UTC")
    return recipient, f"{reason}: {where} instead"


def _subject_rep(subject: Subject, channels: TeamChannels) -> _Candidate:
    if subject.kind != "rep":
        return None, f"the alert is about a {subject.kind}, not a rep (use owner_rep)"
    if subject.rep is None:
        return None, f"rep {subject.id} is not in the rep reference data"
    return _person(subject.rep, f"rep {subject.id}", subject, channels,
                   ", whom the alert is about,")


def _manager(subject: Subject, catalog: Catalog, channels: TeamChannels) -> _Candidate:
    base = subject.rep if subject.kind == "rep" else subject.owner
    of = f"rep {base.rep_id}" if base else (
        f"rep {subject.id}" if subject.kind == "rep" else
        f"the owner rep of customer {subject.customer_id}" if subject.customer_id else
        f"the {subject.kind} {subject.id}")
    manager_id = (base.manager_id if base else None) or _text(subject.facts.get("manager_id"))
    manager = catalog.reps.get(manager_id) if manager_id else None
    if manager is not None:
        return _person(manager, f"manager of {of}", subject, channels)
    reason = (f"manager {manager_id} of {of} is not in the rep reference data" if manager_id
              else f"no manager known for {of}")
    if subject.private:
        return None, reason
    recipient, where = _team_channel(subject.team, channels, _tz(base))
    return recipient, f"{reason}: {where} instead"


def _person(rep: Rep, role: str, subject: Subject, channels: TeamChannels,
            aside: str = "") -> _Candidate:
    """A rep through their preferred channel; the team channel when they have no address."""
    shown = [rep.name or ("" if rep.rep_id in role.split() else rep.rep_id),
             f"team {rep.team}" if rep.team else ""]
    label = f"{role} ({', '.join(p for p in shown if p)})".replace(" ()", "") + aside
    name = rep.name or rep.rep_id
    if rep.slack_user_id:
        return (Recipient("slack", rep.slack_user_id, name, rep.rep_id, _tz(rep)),
                f"{label} via Slack DM")
    if rep.email:
        return (Recipient("email", rep.email, name, rep.rep_id, _tz(rep)),
                f"{label} via email (no Slack user id)")
    if subject.private:
        return None, f"{label} has no Slack user id or email"
    recipient, where = _team_channel(rep.team or subject.team, channels, _tz(rep))
    return recipient, f"{label} has no Slack user id or email: {where} instead"


def _team_channel(team: str | None, channels: TeamChannels,
                  timezone: str) -> tuple[Recipient, str]:
    own = channels.channel_for(team)
    if own is not None:
        return (Recipient("slack", own, f"team {team}", None, timezone),
                f"team channel {own} of team {team}")
    why = f"no channel for team {team}" if team else "team unknown"
    return (Recipient("slack", channels.default, channels.default, None, timezone),
            f"default channel {channels.default} ({why})")


def _tz(rep: Rep | None) -> str:
    return (rep.timezone if rep else None) or "UTC"


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
