"""The routing tree: matching, inheritance, continue, and validation of routing.yaml."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from sia.config import ConfigError
from sia.findings import Severity
from sia.routing import QuietHours, Route, RouteSettings, load_routes

from .builders import SHIPPED, write

TREE = """
receivers:
  owner_rep: {kind: owner_rep}
  rep: {kind: rep}
  manager: {kind: manager}
  team_channel: {kind: team_channel}
  ops: {kind: slack_channel, channel: "#ops"}
  audit: {kind: email, address: audit@example.com}
team_channels: {default: "#sales", UK: "#uk"}
route:
  receivers: [owner_rep]
  group_wait_minutes: 10
  quiet_hours: "19:00-07:30"
  routes:
    - match: {severity: high}
      receivers: [ops]
      continue: true
      group_wait_minutes: 0
    - name: perf
      match: {detector: performance}
      receivers: [rep, manager]
      digest_below: high
      routes:
        - name: uk
          match: {team: [UK, Ireland]}
          daily_budget: 3
    - name: big
      match: {segment: [enterprise, strategic], severity_at_least: medium}
      receivers: [owner_rep, audit]
      quiet_hours: null
    - name: north
      match: {region: [North, 44]}
      receivers: [team_channel]
"""


@pytest.fixture
def tree(tmp_path: Path) -> Route:
    return load_routes(write(tmp_path, TREE))


def attrs(detector: str = "drift", severity: str = "low", **more: str) -> dict[str, str | None]:
    return {"detector": detector, "kind": "overdue", "severity": severity,
            "subject_kind": "customer", **more}


@pytest.mark.parametrize(("alert", "paths"), [
    (attrs(), ["root"]),  # no child matches: the root itself
    (attrs(severity="high"), ["root/0"]),  # continue, but no later sibling matches
    (attrs("performance", "medium", team="UK"), ["root/perf/uk"]),  # deepest wins
    (attrs("performance", "medium", team="Ireland"), ["root/perf/uk"]),  # any value of a list
    (attrs("performance", "medium", team="DE"), ["root/perf"]),  # child fails: the parent
    (attrs("performance", "medium"), ["root/perf"]),  # a missing attribute does not match
    (attrs("performance", "high", team="UK"), ["root/0", "root/perf/uk"]),  # continue
    (attrs(severity="medium", segment="enterprise"), ["root/big"]),
    (attrs(severity="high", segment="strategic"), ["root/0", "root/big"]),
    (attrs(severity="low", segment="enterprise"), ["root"]),  # below severity_at_least
    (attrs(severity="medium", segment="enterprise", region="North"), ["root/big"]),  # stops
    (attrs(region="North"), ["root/north"]),
    (attrs(region="44"), ["root/north"]),  # YAML numbers match as text
    (attrs(region="north"), ["root"]),  # values are exact
])
def test_matching(tree: Route, alert: dict[str, str | None], paths: list[str]) -> None:
    assert [m.path for m in tree.match(alert)] == paths


@pytest.mark.parametrize(("path", "receivers", "expected"), [
    ("root", ["owner_rep"], {"group_wait_minutes": 10.0, "digest_below": Severity.MEDIUM,
                             "daily_budget": 8, "quiet_hours": "19:00-07:30"}),
    ("root/0", ["ops"], {"group_wait_minutes": 0.0, "quiet_hours": "19:00-07:30"}),
    ("root/perf", ["rep", "manager"], {"digest_below": Severity.HIGH, "daily_budget": 8}),
    ("root/perf/uk", ["rep", "manager"], {  # receivers and settings inherited from perf
        "group_wait_minutes": 10.0, "digest_below": Severity.HIGH, "daily_budget": 3,
        "quiet_hours": "19:00-07:30", "digest_at": time(8, 0)}),
    ("root/big", ["owner_rep", "audit"], {"quiet_hours": None}),  # null switches it off
    ("root/north", ["team_channel"], {"group_wait_minutes": 10.0}),
])
def test_children_inherit_settings_and_receivers(tree: Route, path: str, receivers: list[str],
                                                 expected: dict[str, Any]) -> None:
    node = tree.find(path)
    assert node is not None
    assert [r.name for r in node.receivers] == receivers
    for key, value in expected.items():
        got = getattr(node.settings, key)
        assert (str(got) if key == "quiet_hours" and got is not None else got) == value


def test_match_results_carry_the_resolved_settings(tree: Route) -> None:
    (match,) = tree.match(attrs("performance", "medium", team="UK"))
    assert [r.kind for r in match.receivers] == ["rep", "manager"]
    assert match.settings == RouteSettings(digest_below=Severity.HIGH, daily_budget=3,
                                           quiet_hours=QuietHours(time(19), time(7, 30)))


def test_continue_is_per_node_not_inherited(tmp_path: Path) -> None:
    path = write(tmp_path, """
receivers: {c: {kind: console}, e: {kind: email, address: a@b.c}}
route:
  receivers: [c]
  routes:
    - match: {detector: drift}
      continue: true
      routes:
        - match: {kind: overdue}
        - match: {kind: overdue}
          receivers: [e]
    - match: {detector: drift}
      receivers: [e]
""")
    tree = load_routes(path)
    paths = [m.path for m in tree.match(attrs())]
    assert paths == ["root/0/0", "root/1"]  # the grandchild without continue stops its siblings


def test_without_continue_the_first_matching_sibling_wins(tmp_path: Path) -> None:
    path = write(tmp_path, """
receivers: {c: {kind: console}}
route:
  receivers: [c]
  routes:
    - {name: first, match: {detector: drift}}
    - {name: second, match: {severity: low}}
""")
    assert [m.path for m in load_routes(path).match(attrs())] == ["root/first"]


@pytest.mark.parametrize(("window", "moment", "quiet"), [
    ("19:00-07:30", time(19, 0), True),
    ("19:00-07:30", time(23, 59), True),
    ("19:00-07:30", time(0, 0), True),
    ("19:00-07:30", time(7, 29), True),
    ("19:00-07:30", time(7, 30), False),
    ("19:00-07:30", time(12, 0), False),
    ("12:00-14:00", time(13, 0), True),
    ("12:00-14:00", time(14, 0), False),
    ("12:00-14:00", time(11, 59), False),
])
def test_quiet_hours_may_wrap_past_midnight(tmp_path: Path, window: str, moment: time,
                                            quiet: bool) -> None:
    path = write(tmp_path, f'receivers: {{c: {{kind: console}}}}\n'
                           f'route: {{receivers: [c], quiet_hours: "{window}"}}\n')
    hours = load_routes(path).settings.quiet_hours
    assert hours is not None and str(hours) == window
    assert hours.contains(moment) is quiet


@pytest.mark.parametrize(("digest_below", "severity", "digest"), [
    ("medium", "low", True), ("medium", "medium", False), ("medium", "high", False),
    ("low", "low", False), ("high", "medium", True), ("high", "high", False),
])
def test_digest_below(digest_below: str, severity: str, digest: bool) -> None:
    settings = RouteSettings(digest_below=Severity(digest_below))
    assert settings.goes_to_digest(severity) is digest


def test_the_shipped_config_loads() -> None:
    tree = load_routes(SHIPPED)
    assert tree.settings == RouteSettings(
        group_wait_minutes=10.0, digest_below=Severity.MEDIUM, daily_budget=8,
        quiet_hours=QuietHours(time(19, 0), time(7, 30)), digest_at=time(8, 0))
    assert [r.name for r in tree.receivers] == ["owner_rep"]
    assert tree.receivers[0].team_channels.default == "#sales-alerts"
    by_path = {node.path: [r.kind for r in node.receivers] for node in tree.walk()}
    assert by_path["root/performance"] == ["rep", "manager"]
    assert by_path["root/alignment"] == ["manager"]
    high = tree.find("root/high-to-team")
    assert high is not None and high.continue_matching
    assert [r.kind for r in high.receivers] == ["team_channel"]


@pytest.mark.parametrize(("alert", "kinds"), [
    (attrs("performance", "high", subject_kind="rep"), [["rep", "manager"]]),
    (attrs("alignment", "medium"), [["manager"]]),
    (attrs("drift", "high"), [["team_channel"], ["owner_rep"]]),
    (attrs("drift", "low"), [["owner_rep"]]),
    (attrs("cross_sell", "medium"), [["owner_rep"]]),
])
def test_the_shipped_tree_routes(alert: dict[str, str | None], kinds: list[list[str]]) -> None:
    matches = load_routes(SHIPPED).match(alert)
    assert [[r.kind for r in m.receivers] for m in matches] == kinds


VALID = {
    "receivers": "{owner_rep: {kind: owner_rep}, manager: {kind: manager}}",
    "team_channels": '{default: "#sales"}',
}


def config(route: str, receivers: str = VALID["receivers"],
           team_channels: str | None = VALID["team_channels"], extra: str = "") -> str:
    channels = f"team_channels: {team_channels}\n" if team_channels is not None else ""
    return f"receivers: {receivers}\n{channels}{extra}route:\n{route}"


ROOT = "  receivers: [owner_rep]\n"


@pytest.mark.parametrize(("text", "key", "message"), [
    (config(ROOT + "  routes:\n    - match: {detector: drift}\n"
            "    - match: {severity: urgent}\n"),
     "route.routes[1].match.severity", "'urgent' is not one of low, medium, high"),
    (config(ROOT + "  routes:\n    - match: {severity: [high, urgent]}\n"),
     "route.routes[0].match.severity[1]", "'urgent' is not one of low, medium, high"),
    (config(ROOT + "  routes:\n    - match: {severity_at_least: huge}\n"),
     "route.routes[0].match.severity_at_least", "'huge' is not one of low, medium, high"),
    (config(ROOT + "  routes:\n    - match: {colour: red}\n"),
     "route.routes[0].match.colour", "unknown key; known: detector, kind, region"),
    (config(ROOT + "  routes:\n    - match: {team: []}\n"),
     "route.routes[0].match.team", "must not be an empty list"),
    (config(ROOT + "  routes:\n    - match: {team: {a: 1}}\n"),
     "route.routes[0].match.team", "must be a value or a list of values"),
    (config(ROOT + "  routes:\n    - match: [drift]\n"),
     "route.routes[0].match", "must be a mapping"),
    (config(ROOT + "  routes:\n    - grup_wait: 3\n"),
     "route.routes[0].grup_wait", "unknown key; known: continue, daily_budget"),
    (config(ROOT + "  routes:\n    - receivers: [managr]\n"),
     "route.routes[0].receivers[0]", "'managr' is not a receiver defined under receivers; "
     "defined: manager, owner_rep"),
    (config(ROOT + "  routes:\n    - receivers: manager\n"),
     "route.routes[0].receivers", "must be a list of receiver names"),
    (config(ROOT + "  routes:\n    - continue: yes please\n"),
     "route.routes[0].continue", "must be true or false"),
    (config(ROOT + "  routes:\n    - name: a/b\n"),
     "route.routes[0].name", "without '/'"),
    (config(ROOT + "  routes:\n    - {name: a}\n    - {name: a}\n"),
     "route.routes[1].name", "'root/a' is already the path of an earlier sibling"),
    (config(ROOT + "  routes:\n    - {}\n    - {name: 0}\n"),
     "route.routes[1].name", "'root/0' is already the path of an earlier sibling"),
    (config(ROOT + "  routes: {a: 1}\n"), "route.routes", "must be a list of routes"),
    (config(ROOT + "  routes:\n    - 3\n"), "route.routes[0]", "must be a mapping"),
    (config(ROOT + "  routes:\n    - routes:\n        - digest_below: urgent\n"),
     "route.routes[0].routes[0].digest_below", "'urgent' is not one of low, medium, high"),
    (config(ROOT + '  quiet_hours: "7pm-7am"\n'),
     "route.quiet_hours", 'must be a local time "HH:MM"'),
    (config(ROOT + '  quiet_hours: "19:00"\n'),
     "route.quiet_hours", 'must be "HH:MM-HH:MM"'),
    (config(ROOT + '  quiet_hours: "07:00-07:00"\n'),
     "route.quiet_hours", "start and end are the same time"),
    (config(ROOT + "  digest_at: 19:00\n"), "route.digest_at", 'write the time in quotes'),
    (config(ROOT + '  digest_at: "25:00"\n'), "route.digest_at", "'25:00'"),
    (config(ROOT + "  daily_budget: 0\n"), "route.daily_budget", "whole number >= 1"),
    (config(ROOT + "  daily_budget: 2.5\n"), "route.daily_budget", "whole number >= 1"),
    (config(ROOT + "  group_wait_minutes: -1\n"),
     "route.group_wait_minutes", "in [0, 1440]"),
    (config(ROOT + "  group_wait_minutes: true\n"),
     "route.group_wait_minutes", "in [0, 1440]"),
    (config(ROOT + "  digest_below: urgent\n"),
     "route.digest_below", "'urgent' is not one of low, medium, high"),
    (config(ROOT + "  match: {detector: drift}\n"), "route.match", "not allowed on the root"),
    (config(ROOT + "  continue: true\n"), "route.continue", "not allowed on the root"),
    (config("  group_wait_minutes: 5\n"), "route.receivers", "required on the root"),
    (config(ROOT, extra="routez: {}\n"), "routez", "unknown top-level key"),
    ("receivers: {c: {kind: console}}\n", "route", "required: the root route"),
    (config(ROOT, receivers="{owner_rep: {kind: owner}}"),
     "receivers.owner_rep.kind", "'owner' is not one of owner_rep, manager, rep"),
    (config(ROOT, receivers="{owner_rep: owner_rep}"),
     "receivers.owner_rep", "must be a mapping with a kind"),
    (config(ROOT, receivers="{owner_rep: {kind: owner_rep}, x: {kind: email}}"),
     "receivers.x.address", "required for kind email"),
    (config(ROOT, receivers="{owner_rep: {kind: owner_rep}, x: {kind: email, address: nope}}"),
     "receivers.x.address", "'nope' is not an email address"),
    (config(ROOT, receivers="{owner_rep: {kind: owner_rep}, "
                            "x: {kind: webhook, url: 'ftp://a', }}"),
     "receivers.x.url", "is not an http(s) URL"),
    (config(ROOT, receivers="{owner_rep: {kind: owner_rep}, "
                            "x: {kind: webhook, url: 'https://a', secret: s3}}"),
     "receivers.x.secret", "secrets do not belong in routing.yaml"),
    (config(ROOT, receivers="{owner_rep: {kind: owner_rep}, "
                            "x: {kind: slack_channel, channel: '#a', address: b}}"),
     "receivers.x.address", "unknown key for kind slack_channel; known: channel, kind"),
    (config(ROOT, team_channels=None),
     "team_channels.default", "required: receiver owner_rep (owner_rep) falls back"),
    (config(ROOT, team_channels="{UK: '#uk'}"), "team_channels.default", "required"),
    (config(ROOT, team_channels="{default: '#a', UK: 7}"),
     "team_channels.UK", "must be a Slack channel"),
])
def test_validation_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str,
                                                     message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {key}: ") + ".*"
                       + re.escape(message)):
        load_routes(path)


def test_the_example_message_reads_as_documented(tmp_path: Path) -> None:
    path = write(tmp_path, config(ROOT + "  routes:\n    - match: {detector: drift}\n"
                                         "    - match: {severity: urgent}\n"))
    with pytest.raises(ConfigError) as error:
        load_routes(path)
    assert str(error.value) == (f"{path}: route.routes[1].match.severity: 'urgent' is not one "
                                "of low, medium, high")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_routes(tmp_path / "nope.yaml")


def test_a_child_may_deliver_nowhere_on_purpose(tmp_path: Path) -> None:
    path = write(tmp_path, config(ROOT + "  routes:\n    - {name: mute, match: {segment: test},"
                                         " receivers: []}\n"))
    (match,) = load_routes(path).match(attrs(segment="test"))
    assert match.path == "root/mute" and match.receivers == ()
