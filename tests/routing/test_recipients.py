"""Recipients: the owner rep through their channel, fallbacks, rep and manager, dedup, why."""

from __future__ import annotations

from pathlib import Path

import pytest

from sia.catalog import Catalog
from sia.notifiers.base import Recipient
from sia.policy import Alert
from sia.routing import (
    Route,
    alert_attributes,
    load_routes,
    resolve,
    resolve_with_notes,
    route_alert,
)

from .builders import SHIPPED, alert, write

RECEIVERS = """
receivers:
  owner_rep: {kind: owner_rep}
  rep: {kind: rep}
  manager: {kind: manager}
  team_channel: {kind: team_channel}
  ops: {kind: slack_channel, channel: "#ops"}
  audit: {kind: email, address: audit@example.com}
  crm: {kind: webhook, url: "https://crm.example.com/hook"}
  console: {kind: console}
team_channels: {default: "#sales-alerts", UK: "#sales-uk"}
"""


def tree(tmp_path: Path, receivers: str, routes: str = "") -> Route:
    text = f"{RECEIVERS}route:\n  receivers: [{receivers}]\n"
    if routes:
        text += f"  routes:\n{routes}"
    return load_routes(write(tmp_path, text))


OWNER = "owner_rep"


@pytest.mark.parametrize(("customer_id", "channel", "address", "why"), [
    ("12345", "slack", "U07PRIYA",
     "owner rep of customer 12345 (Priya Shah, team UK) via Slack DM"),
    ("222", "email", "omar@example.com",
     "owner rep of customer 222 (Omar Haddad, team DE) via email (no Slack user id)"),
    ("333", "slack", "#sales-uk",  # Nia has no address: her team's channel
     "owner rep of customer 333 (Nia Brown, team UK) has no Slack user id or email: "
     "team channel #sales-uk of team UK instead"),
    ("666", "slack", "#sales-alerts",  # Tom has no address and his team has no channel
     "owner rep of customer 666 (Tom Ray, team Nordics) has no Slack user id or email: "
     "default channel #sales-alerts (no channel for team Nordics) instead"),
    ("444", "slack", "#sales-alerts",
     "customer 444 has no owner rep: default channel #sales-alerts (team unknown) instead"),
    ("555", "slack", "#sales-alerts",
     "owner rep R404 of customer 555 is not in the rep reference data: default channel "
     "#sales-alerts (team unknown) instead"),
    ("999", "slack", "#sales-alerts",
     "customer 999 is not in the customer reference data: default channel #sales-alerts "
     "(team unknown) instead"),
])
def test_owner_rep_through_the_preferred_channel_else_the_team_channel(
        tmp_path: Path, catalog: Catalog, customer_id: str, channel: str, address: str,
        why: str) -> None:
    (routed,) = route_alert(tree(tmp_path, OWNER), alert(subject_id=customer_id), catalog)
    assert (routed.recipient.channel, routed.recipient.address, routed.why) == (
        channel, address, why)
    assert routed.route == "root" and routed.receiver == "owner_rep"


def test_a_person_recipient_carries_rep_id_name_and_time_zone(tmp_path: Path,
                                                              catalog: Catalog) -> None:
    (routed,) = route_alert(tree(tmp_path, OWNER), alert(subject_id="222"), catalog)
    assert routed.recipient == Recipient("email", "omar@example.com", "Omar Haddad", "R8",
                                         "Europe/Berlin")
    (channel,) = route_alert(tree(tmp_path, OWNER), alert(subject_id="444"), catalog)
    assert channel.recipient.rep_id is None  # a channel is nobody's daily budget


def test_the_team_of_an_unknown_owner_comes_from_the_facts(tmp_path: Path,
                                                           catalog: Catalog) -> None:
    (routed,) = route_alert(tree(tmp_path, OWNER),
                            alert(subject_id="444", facts={"team": "UK"}), catalog)
    assert routed.recipient.address == "#sales-uk"


PERFORMANCE = {"manager_id": "R1", "notify": ["R7", "R1"]}


def test_performance_goes_to_the_rep_and_their_manager(tmp_path: Path,
                                                       catalog: Catalog) -> None:
    routed = route_alert(tree(tmp_path, "rep, manager"),
                         alert("performance", "R7", subject_kind="rep", facts=PERFORMANCE),
                         catalog)
    assert [(r.recipient.address, r.recipient.rep_id, r.why) for r in routed] == [
        ("U07PRIYA", "R7",
         "rep R7 (Priya Shah, team UK), whom the alert is about, via Slack DM"),
        ("sam@example.com", "R1",
         "manager of rep R7 (Sam Lee, team UK) via email (no Slack user id)"),
    ]


def test_the_shipped_tree_sends_performance_to_the_rep_and_manager_only(
        catalog: Catalog) -> None:
    routed = route_alert(load_routes(SHIPPED),
                         alert("performance", "R7", subject_kind="rep", severity="high",
                               facts=PERFORMANCE), catalog)
    assert [(r.recipient.address, r.route) for r in routed] == [
        ("U07PRIYA", "root/performance"), ("sam@example.com", "root/performance")]


def test_the_manager_comes_from_the_facts_when_the_rep_record_has_none(
        tmp_path: Path, catalog: Catalog) -> None:
    routed = route_alert(tree(tmp_path, "manager"),
                         alert("performance", "R6", subject_kind="rep",
                               facts={"manager_id": "R9"}), catalog)
    assert [(r.recipient.address, r.why) for r in routed] == [
        ("U09LENA", "manager of rep R6 (Lena Vogt, team DE) via Slack DM")]


@pytest.mark.parametrize(("subject_id", "facts", "addresses", "notes"), [
    ("R8", {}, ["omar@example.com", "U09LENA"], []),
    ("R5", {"manager_id": "R1"}, ["sam@example.com"], [
        "rep (route root): nobody: rep R5 (Nia Brown, team UK), whom the alert is about, "
        "has no Slack user id or email"]),
    ("R6", {}, [], [
        "rep (route root): nobody: rep R6 (Tom Ray, team Nordics), whom the alert is about, "
        "has no Slack user id or email",
        "manager (route root): nobody: no manager known for rep R6"]),
    ("R77", {"manager_id": "R404"}, [], [
        "rep (route root): nobody: rep R77 is not in the rep reference data",
        "manager (route root): nobody: manager R404 of rep R77 is not in the rep reference "
        "data"]),
])
def test_alerts_about_a_rep_never_fall_back_to_a_channel(
        tmp_path: Path, catalog: Catalog, subject_id: str, facts: dict[str, str],
        addresses: list[str], notes: list[str]) -> None:
    resolution = resolve_with_notes(
        tree(tmp_path, "rep, manager").match({}),
        alert("performance", subject_id, subject_kind="rep", facts=facts), catalog)
    assert [r.recipient.address for r in resolution.routed] == addresses
    assert list(resolution.notes) == notes


@pytest.mark.parametrize(("customer_id", "facts", "address", "why"), [
    ("12345", {}, "sam@example.com",
     "manager of rep R7 (Sam Lee, team UK) via email (no Slack user id)"),
    ("222", {}, "U09LENA", "manager of rep R8 (Lena Vogt, team DE) via Slack DM"),
    ("444", {"manager_id": "R9"}, "U09LENA",
     "manager of the owner rep of customer 444 (Lena Vogt, team DE) via Slack DM"),
    ("444", {}, "#sales-alerts",
     "no manager known for the owner rep of customer 444: default channel #sales-alerts "
     "(team unknown) instead"),
    ("666", {}, "#sales-alerts",
     "no manager known for rep R6: default channel #sales-alerts (no channel for team "
     "Nordics) instead"),
])
def test_manager_of_a_customer_alert_is_the_owner_reps_manager(
        tmp_path: Path, catalog: Catalog, customer_id: str, facts: dict[str, str],
        address: str, why: str) -> None:
    (routed,) = route_alert(tree(tmp_path, "manager"),
                            alert(subject_id=customer_id, facts=facts), catalog)
    assert (routed.recipient.address, routed.why) == (address, why)


def test_rep_receiver_on_a_customer_alert_reaches_nobody(tmp_path: Path,
                                                        catalog: Catalog) -> None:
    root = tree(tmp_path, "rep")
    resolution = resolve_with_notes(root.match({}), alert(), catalog)
    assert resolution.routed == ()
    assert resolution.notes == ("rep (route root): nobody: the alert is about a customer, "
                                "not a rep (use owner_rep)",)


@pytest.mark.parametrize(("receiver", "recipient", "why"), [
    ("ops", Recipient("slack", "#ops", "#ops"), "Slack channel #ops (receiver ops)"),
    ("audit", Recipient("email", "audit@example.com", "audit@example.com"),
     "email audit@example.com (receiver audit)"),
    ("crm", Recipient("webhook", "https://crm.example.com/hook", "crm"),
     "webhook https://crm.example.com/hook (receiver crm)"),
    ("console", Recipient("console", "-", "console"), "console (receiver console)"),
    ("team_channel", Recipient("slack", "#sales-uk", "team UK", None, "Europe/London"),
     "team channel #sales-uk of team UK"),
])
def test_fixed_receivers_and_the_team_channel(tmp_path: Path, catalog: Catalog, receiver: str,
                                              recipient: Recipient, why: str) -> None:
    (routed,) = route_alert(tree(tmp_path, receiver), alert(), catalog)
    assert (routed.recipient, routed.why) == (recipient, why)


@pytest.mark.parametrize(("subject_kind", "subject_id", "facts", "address"), [
    ("team", "UK", {}, "#sales-uk"),
    ("team", "DE", {}, "#sales-alerts"),
    ("product", "P1", {}, "#sales-alerts"),
    ("product", "P1", {"team": "UK"}, "#sales-uk"),
    ("rep", "R7", {}, "#sales-uk"),
])
def test_team_channel_of_other_subjects(tmp_path: Path, catalog: Catalog, subject_kind: str,
                                        subject_id: str, facts: dict[str, str],
                                        address: str) -> None:
    (routed,) = route_alert(tree(tmp_path, "team_channel"),
                            alert(subject_id=subject_id, subject_kind=subject_kind,
                                  facts=facts), catalog)
    assert routed.recipient.address == address


def test_duplicates_keep_the_first_recipient(tmp_path: Path, catalog: Catalog) -> None:
    root = tree(tmp_path, "owner_rep", """\
    - {name: loud, match: {severity: high}, receivers: [team_channel, owner_rep], continue: true}
    - {name: owner, receivers: [owner_rep, manager, team_channel]}
""")
    resolution = resolve_with_notes(root.match({"severity": "high"}), alert(subject_id="333"),
                                    catalog)
    # Nia (no address) falls back to #sales-uk, which the loud route already posts to
    assert [(r.recipient.address, r.route, r.receiver) for r in resolution.routed] == [
        ("#sales-uk", "root/loud", "team_channel"),
        ("sam@example.com", "root/owner", "manager"),
    ]
    assert resolution.notes == (
        "owner_rep (route root/loud): slack #sales-uk already gets it via team_channel "
        "(route root/loud); not sent twice",
        "owner_rep (route root/owner): slack #sales-uk already gets it via team_channel "
        "(route root/loud); not sent twice",
        "team_channel (route root/owner): slack #sales-uk already gets it via team_channel "
        "(route root/loud); not sent twice",
    )


def test_resolution_is_deterministic(tmp_path: Path, catalog: Catalog) -> None:
    root = tree(tmp_path, "console, owner_rep, ops, manager, team_channel, audit")
    first = route_alert(root, alert(), catalog)
    assert [r.receiver for r in first] == ["console", "owner_rep", "ops", "manager",
                                           "team_channel", "audit"]
    rebuilt = Catalog(dict(reversed(catalog.customers.items())), {},
                      dict(reversed(catalog.reps.items())))
    for _ in range(3):
        assert route_alert(root, alert(), rebuilt) == first
    assert resolve(root.match(alert_attributes(alert(), catalog)), alert(), catalog) == first


def test_each_recipient_carries_the_settings_of_its_route(tmp_path: Path,
                                                         catalog: Catalog) -> None:
    root = tree(tmp_path, "owner_rep", """\
    - {name: now, match: {severity: high}, receivers: [ops], group_wait_minutes: 0,
       continue: true}
    - {name: rest, daily_budget: 2}
""")
    ops, owner = route_alert(root, alert(), catalog)
    assert (ops.route, ops.settings.group_wait_minutes, ops.settings.daily_budget) == (
        "root/now", 0.0, 8)
    assert (owner.route, owner.settings.group_wait_minutes, owner.settings.daily_budget) == (
        "root/rest", 10.0, 2)


@pytest.mark.parametrize(("made", "expected"), [
    (alert(subject_id="12345"), {"team": "UK", "segment": "retail", "region": "North"}),
    (alert(subject_id="222", severity="low"),
     {"team": "DE", "segment": "enterprise", "region": "South", "severity": "low"}),
    (alert(subject_id="444"), {"team": None, "segment": "retail", "region": None}),
    (alert(subject_id="999", facts={"segment": "smb", "region": "West", "team": "UK"}),
     {"team": "UK", "segment": "smb", "region": "West"}),
    (alert("performance", "R8", subject_kind="rep"),
     {"team": "DE", "segment": None, "subject_kind": "rep", "detector": "performance"}),
    (alert("basket", "P1", subject_kind="product", facts={"customer_id": "12345"}),
     {"team": "UK", "segment": "retail", "subject_kind": "product"}),
    (alert(subject_id="UK", subject_kind="team"), {"team": "UK", "segment": None}),
])
def test_alert_attributes_come_from_the_reference_data(
        catalog: Catalog, made: Alert, expected: dict[str, str | None]) -> None:
    found = alert_attributes(made, catalog)
    assert set(found) == {"detector", "kind", "severity", "subject_kind", "team", "segment",
                          "region"}
    for key, value in expected.items():
        assert found[key] == value
