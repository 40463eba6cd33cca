"""`sia routes test ALERT.json`: the explanation of where an alert goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sia.catalog import Catalog
from sia.config import ConfigError
from sia.routing import AlertJsonError, explain_route
from sia.routing.explain import alert_from_json, with_context

from .builders import DATA, SHIPPED, rep, write


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "alert_with_context.json").read_text())
    return data


def test_the_sample_alert_through_the_shipped_routes() -> None:
    assert explain_route(sample(), SHIPPED).splitlines() == [
        "alert a1b2c3: drift/overdue, high, about customer 12345",
        "attributes: detector=drift, kind=overdue, severity=high, subject_kind=customer, "
        "team=UK, segment=retail, region=North",
        "matched root/high-to-team (continue): root [any] > high-to-team [severity=high, "
        "subject_kind=customer]",
        "  settings root/high-to-team: receivers team_channel; group wait 10 min, digest below "
        "medium, budget 8/rep/day, quiet hours 19:00-07:30, digest at 08:00",
        "matched root/owner: root [any] > owner [any]",
        "  settings root/owner: receivers owner_rep; group wait 10 min, digest below medium, "
        "budget 8/rep/day, quiet hours 19:00-07:30, digest at 08:00",
        "to slack #sales-alerts: default channel #sales-alerts (no channel for team UK); "
        "immediately, outside quiet hours 19:00-07:30 Europe/London; receiver team_channel, "
        "route root/high-to-team",
        "to slack U07PRIYA (Priya Shah): owner rep of customer 12345 (Priya Shah, team UK) via "
        "Slack DM; immediately, outside quiet hours 19:00-07:30 Europe/London; receiver "
        "owner_rep, route root/owner",
    ]


TREE = """
receivers:
  owner_rep: {kind: owner_rep}
  rep: {kind: rep}
  manager: {kind: manager}
team_channels: {default: "#sales-alerts", UK: "#sales-uk"}
route:
  receivers: [owner_rep]
  quiet_hours: null
  routes:
    - name: performance
      match: {detector: performance}
      receivers: [rep, manager]
      routes:
        - {name: uk, match: {team: UK}, digest_below: high, digest_at: "09:15"}
"""


def test_a_performance_alert_with_a_rep_in_context(tmp_path: Path) -> None:
    data = {"alert_id": "p1", "detector": "performance", "kind": "win_rate", "severity": "low",
            "subject_kind": "rep", "subject_id": "R7",
            "facts": {"manager_id": "R1", "notify": ["R7", "R1"]},
            "context": {"rep": {"name": "Priya Shah", "team": "UK", "slack_user_id": "U07",
                                "timezone": "Europe/London"},
                        "manager": {"name": "Sam Lee", "email": "sam@example.com"}}}
    assert explain_route(data, write(tmp_path, TREE)).splitlines() == [
        "alert p1: performance/win_rate, low, about rep R7",
        "attributes: detector=performance, kind=win_rate, severity=low, subject_kind=rep, "
        "team=UK, segment=-, region=-",
        "matched root/performance/uk: root [any] > performance [detector=performance] > "
        "uk [team=UK]",
        "  settings root/performance/uk: receivers rep, manager; group wait 10 min, digest "
        "below high, budget 8/rep/day, quiet hours none, digest at 09:15",
        "to slack U07 (Priya Shah): rep R7 (Priya Shah, team UK), whom the alert is about, via "
        "Slack DM; in the daily digest at 09:15 Europe/London (low is below high); receiver "
        "rep, route root/performance/uk",
        "to email sam@example.com (Sam Lee): manager of rep R7 (Sam Lee) via email (no Slack "
        "user id); in the daily digest at 09:15 UTC (low is below high); receiver manager, "
        "route root/performance/uk",
    ]


def test_without_context_the_catalog_decides(tmp_path: Path) -> None:
    data = {k: v for k, v in sample().items() if k != "context"}
    path = write(tmp_path, TREE)
    assert explain_route(data, path).splitlines()[-1] == (
        "to slack #sales-alerts: customer 12345 is not in the customer reference data: default "
        "channel #sales-alerts (team unknown) instead; immediately; receiver owner_rep, "
        "route root")
    catalog = Catalog()
    catalog.update(rep("R7", team="UK"))
    data["subject_kind"], data["subject_id"], data["detector"] = "rep", "R7", "performance"
    lines = explain_route(data, path, catalog).splitlines()
    assert lines[-3:] == [
        "nobody gets this alert",
        "note: rep (route root/performance/uk): nobody: rep R7 (team UK), whom the alert "
        "is about, has no Slack user id or email",
        "note: manager (route root/performance/uk): nobody: no manager known for rep R7",
    ]


def test_context_fills_links_and_leaves_the_catalog_alone() -> None:
    catalog = Catalog()
    catalog.update(rep("R7", name="Old Name", team="DE"))
    data = sample()
    alert = alert_from_json(data)
    merged = with_context(catalog, alert, data["context"])
    assert merged.customers["12345"].owner_rep_id == "R7"
    assert merged.reps["R7"].manager_id == "R1" and merged.reps["R7"].name == "Priya Shah"
    assert merged.reps["R1"].email == "sam@example.com"
    assert catalog.reps["R7"].name == "Old Name" and "12345" not in catalog.customers


def test_a_stored_alert_without_optional_fields_is_enough() -> None:
    alert = alert_from_json({"detector": "drift", "kind": "overdue", "severity": "medium",
                             "subject_kind": "customer", "subject_id": "9"})
    assert alert.finding.facts == {} and alert.finding.title == "drift/overdue"
    assert len(alert.alert_id) == 32


@pytest.mark.parametrize(("change", "message"), [
    ({"severity": None}, "severity: required"),
    ({"severity": "urgent"}, "severity: 'urgent' is not one of low, medium, high"),
    ({"subject_kind": "account"}, "subject_kind: 'account' is not one of customer, rep"),
    ({"facts": [1]}, "facts: must be an object"),
    ({"occurred_at": "yesterday"}, "occurred_at: 'yesterday' is not an ISO 8601 time"),
    ({"context": []}, "context: must be an object"),
    ({"context": {"owner": {}}}, "context.owner: unknown key; known: customer, owner_rep"),
    ({"context": {"manager": "R1"}}, "context.manager: must be an object"),
    ({"context": {"owner_rep": {"name": "x"}}}, "context.owner_rep.rep_id: Field required"),
    ({"context": {"customer": {"segmnt": "x"}}}, "context.customer.segmnt: Extra inputs"),
])
def test_bad_alert_json_names_the_key(tmp_path: Path, change: dict[str, Any],
                                      message: str) -> None:
    data = {**sample(), **change}
    with pytest.raises(AlertJsonError, match=message):
        explain_route(data, write(tmp_path, TREE))


def test_a_bad_routes_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="route: required"):
        explain_route(sample(), write(tmp_path, "receivers: {}\n"))
