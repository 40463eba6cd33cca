"""`sia routes test ALERT.json`: where a stored alert would go, and why, one line each.

ALERT.json is the JSON of a stored alert (`AlertRecord.to_dict()`, e.g. from
`sia alerts --json`). Only `detector`, `kind`, `subject_kind`, `subject_id` and `severity`
are required; `alert_id`, `title`, `facts` and the rest are used when present. So that a
route can be tried without a stream, the alert may embed the reference data it needs::

    {
      "alert_id": "a1", "detector": "drift", "kind": "overdue", "severity": "high",
      "subject_kind": "customer", "subject_id": "12345", "facts": {},
      "context": {
        "customer":  {"segment": "retail", "region": "North"},
        "owner_rep": {"rep_id": "R7", "name": "Priya Shah", "team": "UK",
                      "slack_user_id": "U07PRIYA", "timezone": "Europe/London"},
        "manager":   {"rep_id": "R1", "name": "Sam Lee", "email": "sam@example.com"}
      }
    }

`context` keys: `customer` (fields of a Customer event), `owner_rep`, `rep` (the rep an
alert about a rep is about) and `manager` (fields of a Rep event). Ids and links may be
left out: the customer's id defaults to the alert's subject, its `owner_rep_id` to the
owner rep's `rep_id`, and the reps' `manager_id` to the manager's `rep_id`. `event_id`
and `occurred_at` are not needed. Context records replace the catalog's for this run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sia.catalog import Catalog
from sia.events.models import Customer, Rep
from sia.findings import Finding, Severity
from sia.policy.policy import Alert
from sia.routing.recipients import Routed, alert_attributes, resolve_with_notes
from sia.routing.tree import Route, load_routes

REQUIRED = ("detector", "kind", "subject_kind", "subject_id", "severity")
CONTEXT_KEYS = ("customer", "owner_rep", "rep", "manager")
SUBJECT_KINDS = ("customer", "rep", "team", "product")


class AlertJsonError(ValueError):
    """ALERT.json is not a usable alert (the message names the key)."""


def explain_route(alert_json: dict[str, Any], routes_path: Path | str,
                  catalog: Catalog | None = None) -> str:
    """Which nodes match the alert, their inherited settings, and who gets it through what."""
    root = load_routes(Path(routes_path))
    alert = alert_from_json(alert_json)
    catalog = with_context(catalog or Catalog(), alert, alert_json.get("context"))
    return "\n".join(explain_lines(root, alert, catalog))


def explain_lines(root: Route, alert: Alert, catalog: Catalog) -> list[str]:
    """The lines of explain_route for an alert already parsed."""
    f = alert.finding
    attrs = alert_attributes(alert, catalog)
    matches = root.match(attrs)
    resolution = resolve_with_notes(matches, alert, catalog)
    lines = [f"alert {alert.alert_id}: {f.detector}/{f.kind}, {f.severity.value}, about "
             f"{f.subject_kind} {f.subject_id}",
             "attributes: " + ", ".join(f"{k}={v if v is not None else '-'}"
                                        for k, v in attrs.items())]
    for match in matches:
        node = root.find(match.path)
        chain = " > ".join(_describe(n) for n in _ancestry(root, match.path))
        names = ", ".join(str(r) for r in match.receivers) or "none"
        go_on = " (continue)" if node is not None and node.continue_matching else ""
        lines.append(f"matched {match.path}{go_on}: {chain}")
        lines.append(f"  settings {match.path}: receivers {names}; {match.settings}")
    for routed in resolution.routed:
        lines.append(_recipient_line(routed, f.severity.value))
    if not resolution.routed:
        lines.append("nobody gets this alert")
    lines.extend(f"note: {note}" for note in resolution.notes)
    return lines


def _recipient_line(routed: Routed, severity: str) -> str:
    r, s = routed.recipient, routed.settings
    if s.goes_to_digest(severity):
        when = (f"in the daily digest at {s.digest_at:%H:%M} {r.timezone} ({severity} is "
                f"below {s.digest_below.value})")
    elif s.quiet_hours is not None:
        when = f"immediately, outside quiet hours {s.quiet_hours} {r.timezone}"
    else:
        when = "immediately"
    who = f" ({r.name})" if r.name and r.name != r.address else ""
    return (f"to {r.channel} {r.address}{who}: {routed.why}; {when}; "
            f"receiver {routed.receiver}, route {routed.route}")


def _ancestry(root: Route, path: str) -> list[Route]:
    parts = path.split("/")
    found = (root.find("/".join(parts[:i])) for i in range(1, len(parts) + 1))
    return [node for node in found if node is not None]


def _describe(node: Route) -> str:
    return f"{node.path.rsplit('/', 1)[-1]} [{node.matcher}]"


def alert_from_json(data: dict[str, Any]) -> Alert:
    """An Alert from stored-alert JSON; fields other than the required ones get defaults."""
    if not isinstance(data, dict):
        raise AlertJsonError("the alert JSON must be an object")
    for key in REQUIRED:
        if not isinstance(data.get(key), str) or not data[key]:
            raise AlertJsonError(f"{key}: required, a non-empty string")
    if data["severity"] not in {s.value for s in Severity}:
        raise AlertJsonError(f"severity: {data['severity']!r} is not one of low, medium, high")
    if data["subject_kind"] not in SUBJECT_KINDS:
        raise AlertJsonError(f"subject_kind: {data['subject_kind']!r} is not one of "
                             f"{', '.join(SUBJECT_KINDS)}")
    facts = data.get("facts") or {}
    if not isinstance(facts, dict):
        raise AlertJsonError("facts: must be an object")
    try:
        occurred = datetime.fromisoformat(str(data.get("occurred_at") or "1970-01-01T00:00Z"))
    except ValueError:
        raise AlertJsonError(f"occurred_at: {data['occurred_at']!r} is not an ISO 8601 "
                             "time") from None
    occurred = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    try:
        finding = Finding(
            detector=data["detector"], kind=data["kind"], subject_kind=data["subject_kind"],
            subject_id=data["subject_id"], occurred_at=occurred,
            score=float(data.get("score") or 0.0), severity=Severity(data["severity"]),
            title=data.get("title") or f"{data['detector']}/{data['kind']}",
            explanation=data.get("explanation") or "-", action=data.get("action") or "-",
            dedup_key=data.get("dedup_key") or
            f"{data['detector']}:{data['kind']}:{data['subject_id']}",
            evidence=tuple(data.get("evidence") or ()), value=float(data.get("value") or 0.0),
            facts=facts)
    except (TypeError, ValueError) as exc:
        raise AlertJsonError(str(exc)) from None
    return Alert(str(data.get("alert_id") or Alert.id_for(finding)), finding)


def with_context(catalog: Catalog, alert: Alert, context: Any) -> Catalog:
    """A copy of the catalog with the alert's embedded reference records put in."""
    merged = Catalog(dict(catalog.customers), dict(catalog.products), dict(catalog.reps))
    if context is None:
        return merged
    if not isinstance(context, dict):
        raise AlertJsonError("context: must be an object")
    for key in context:
        if key not in CONTEXT_KEYS:
            raise AlertJsonError(f"context.{key}: unknown key; known: {', '.join(CONTEXT_KEYS)}")
    raw = {key: _object(context, key) for key in CONTEXT_KEYS if context.get(key) is not None}
    f = alert.finding
    owner, rep, manager, customer = (raw.get(k) for k in ("owner_rep", "rep", "manager",
                                                          "customer"))
    if customer is not None:
        _link(customer, "customer_id",
              f.subject_id if f.subject_kind == "customer" else f.facts.get("customer_id"))
        if owner is not None:
            _link(customer, "owner_rep_id", owner.get("rep_id"))
            _link(owner, "rep_id", customer.get("owner_rep_id"))
    if rep is not None and f.subject_kind == "rep":
        _link(rep, "rep_id", f.subject_id)
    if manager is not None:
        linked = [r.get("manager_id") for r in (owner, rep) if r is not None]
        _link(manager, "rep_id", next((m for m in linked if m), f.facts.get("manager_id")))
        for person in (owner, rep):
            if person is not None:
                _link(person, "manager_id", manager.get("rep_id"))
    stamp = {"occurred_at": f.occurred_at.isoformat()}
    for key, record in raw.items():
        record = {"event_id": f"context:{key}", **stamp, **record}
        try:
            if key == "customer":
                found = Customer.model_validate(record)
                merged.customers[found.customer_id] = found
            else:
                someone = Rep.model_validate(record)
                merged.reps[someone.rep_id] = someone
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise AlertJsonError(f"context.{key}.{where}: {first['msg']}") from None
    return merged


def _link(record: dict[str, Any], key: str, value: Any) -> None:
    """Fill a left-out id from a linked record (never overwrite one that was given)."""
    if record.get(key) is None and value is not None:
        record[key] = str(value)


def _object(context: dict[str, Any], key: str) -> dict[str, Any]:
    value = context[key]
    if not isinstance(value, dict):
        raise AlertJsonError(f"context.{key}: must be an object with the record's fields")
    return dict(value)
