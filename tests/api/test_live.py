"""The live engine behind the API: events posted over HTTP give exactly the alerts of one
engine replaying them; alerts are read back with scopes and pages; customers show what
was learned; recent alerts are delivered, old ones kept as history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notifiers.servers import WEBHOOK_SECRET, WebhookReceiver  # type: ignore[import-not-found]

from sia.cli.demo import DATASETS, load
from sia.engine.driver import Driver
from sia.engine.engine import Engine
from sia.events.models import Event
from sia.policy import Alert
from sia.service.pipeline import build

from .conftest import Server, server_settings, serving


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


def as_json(events: list[Event]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in events]


def post_all(server: Server, events: list[dict[str, Any]], size: int = 500) -> int:
    accepted = 0
    with server.client("crm") as client:
        for i in range(0, len(events), size):
            response = client.post("/v1/events", json={"events": events[i:i + size]})
            assert response.status_code == 200, response.text
            assert response.json()["rejected"] == 0, response.json()["results"][:3]
            accepted += response.json()["accepted"]
    return accepted


def one_engine(events: list[Event]) -> list[Alert]:
    """What one engine and policy raise on the same stream, in batches as the live one
    reads them (no final tick: a live stream has no end)."""
    detectors, policy = build()
    driver = Driver(Engine(detectors))
    out = []
    for i in range(0, len(events), 2048):
        out += [a for f in driver.feed(events[i:i + 2048]) if (a := policy.admit(f))]
    return out


def all_alerts(server: Server, who: str = "admin", **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with server.client(who) as client:
        while True:
            page = client.get("/v1/alerts", params={**params, "limit": 200,
                                                    **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, retail: list[Event]) -> Any:
    """A server that learned the bundled online retail sample over HTTP."""
    with serving(tmp_path_factory.mktemp("live") / "data") as server:
        accepted = post_all(server, as_json(retail))
        server.wait_learned()
        yield server, accepted


def test_events_posted_over_http_raise_exactly_one_engines_alerts(
        replayed: Any, retail: list[Event]) -> None:
    server, accepted = replayed
    assert accepted == len(retail)
    status = server.status()
    assert status["learned"] == len(retail) and status["duplicates"] == 0
    expected = {a.alert_id for a in one_engine(retail)}
    got = all_alerts(server)
    assert len(expected) > 400
    assert {a["alert_id"] for a in got} == expected
    assert len(got) == len(expected)  # pages neither repeat nor skip an alert
    assert {a["status"] for a in got} == {"history"}  # 2011: never sent to anyone
    customers = [a for a in got if a["subject_kind"] == "customer"]
    assert customers and all(a["rep_id"] and a["team"] for a in customers)  # whose it is


def test_reps_and_team_managers_read_only_their_alerts(replayed: Any) -> None:
    server, _ = replayed
    everything = all_alerts(server)
    rep_id = next(a["rep_id"] for a in everything if a["rep_id"])
    team = next(a["team"] for a in everything if a["rep_id"] == rep_id)
    with server.client("admin") as admin:
        rep_key = admin.post("/v1/keys", json={"role": "rep", "name": "r",
                                               "rep_id": rep_id}).json()["key"]
        manager_key = admin.post("/v1/keys", json={"role": "manager", "name": "m",
                                                   "team": team}).json()["key"]
    server.keys.update(one_rep=rep_key, one_team=manager_key)
    mine = all_alerts(server, "one_rep")
    assert mine and {a["rep_id"] for a in mine} == {rep_id}
    assert len(mine) == sum(1 for a in everything if a["rep_id"] == rep_id)
    teams = all_alerts(server, "one_team")
    assert {a["team"] for a in teams} == {team}
    with server.client("one_rep") as rep:
        other = next(a for a in everything if a["rep_id"] not in (rep_id, None))
        assert rep.get(f"/v1/alerts/{other['alert_id']}").status_code == 404
        assert rep.get("/v1/alerts", params={"rep": other["rep_id"]}).status_code == 403
        assert rep.get(f"/v1/alerts/{mine[0]['alert_id']}").status_code == 200


def test_alert_filters_and_a_cursor_that_is_not_ours(replayed: Any) -> None:
    server, _ = replayed
    drift = all_alerts(server, detector="drift")
    assert drift and {a["detector"] for a in drift} == {"drift"}
    since = all_alerts(server, since="2011-11-01T00:00:00+00:00")
    assert since and min(a["occurred_at"] for a in since) >= "2011-11-01"
    customer = drift[0]["subject_id"]
    assert {a["subject_id"] for a in all_alerts(server, customer=customer)} == {customer}
    with server.client("admin") as admin:
        assert admin.get("/v1/alerts", params={"detector": "drfit"}).status_code == 422
        assert admin.get("/v1/alerts", params={"cursor": "garbage!"}).status_code == 422
        newest = admin.get("/v1/alerts", params={"limit": 3}).json()["items"]
    stamps = [a["occurred_at"] for a in newest]
    assert stamps == sorted(stamps, reverse=True)


def test_a_customer_page_shows_what_was_learned(replayed: Any) -> None:
    server, _ = replayed
    drift = all_alerts(server, detector="drift")
    with server.client("admin") as admin:
        views = [admin.get(f"/v1/customers/{a['subject_id']}").json() for a in drift[:30]]
        view = max(views, key=lambda v: v["rhythm"]["orders"])
        customer = view["customer_id"]
        assert admin.get("/v1/customers/nobody-at-all").status_code == 404
    assert view["customer_id"] == customer and view["owner_rep_id"]
    rhythm = view["rhythm"]
    assert rhythm["orders"] >= 2 and rhythm["typical_days_between_orders"] > 0
    assert rhythm["last_order_at"] <= "2011-12-09"
    assert view["recent_orders"] and view["recent_orders"][0]["amount"] > 0
    dates = [o["occurred_at"] for o in view["recent_orders"]]
    assert dates == sorted(dates, reverse=True)
    assert customer in {a["subject_id"] for a in view["open_alerts"]}
    assert "drift" in view["learned_by"]


def shifted(events: list[Event], end: datetime) -> list[dict[str, Any]]:
    """The events moved in time so that the last one happens at `end`."""
    delta = end - max(e.occurred_at for e in events)
    out = []
    for e in events:
        data = e.model_dump(mode="json")
        data["occurred_at"] = (e.occurred_at + delta).isoformat()
        out.append(data)
    return out


def test_recent_alerts_are_delivered_and_old_ones_kept_as_history(
        tmp_path: Path, retail: list[Event]) -> None:
    now = datetime.now(UTC)
    recent = shifted(retail, now - timedelta(hours=1))
    with WebhookReceiver() as hook:
        routes = tmp_path / "routing.yaml"
        routes.write_text(
            "receivers:\n"
            f"  hook: {{kind: webhook, url: \"{hook.url}\"}}\n"
            "team_channels: {default: \"#sales\"}\n"
            "route:\n  receivers: [hook]\n  group_wait_minutes: 0\n  digest_below: low\n"
            "  daily_budget: null\n  quiet_hours: null\n")
        settings = server_settings(webhook_secret=WEBHOOK_SECRET.decode(),
                                   serve_deliver_seconds=0.2)
        with serving(tmp_path / "data", settings, routes=routes) as server:
            post_all(server, recent)
            server.wait_learned()
            everything = all_alerts(server)
            fresh = [a for a in everything if a["status"] != "history"]
            cutoff = (now - timedelta(days=2)).isoformat()
            assert fresh and all(a["occurred_at"] >= cutoff for a in fresh)
            assert len(fresh) < len(everything) / 5
            deadline = time.monotonic() + 60
            while len({a["alert_id"] for r in hook.received for a in r.json()["alerts"]}) < len(
                    fresh) and time.monotonic() < deadline:
                time.sleep(0.1)
            sent = {a["alert_id"] for r in hook.received for a in r.json()["alerts"]}
            assert sent == {a["alert_id"] for a in fresh}
            with server.client("admin") as admin:  # recorded once the receiver answered
                deadline = time.monotonic() + 30
                while True:
                    detail = admin.get(f"/v1/alerts/{fresh[0]['alert_id']}").json()
                    if detail["deliveries"][0]["status"] != "queued" \
                            or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
            assert detail["deliveries"][0]["status"] == "sent"
            assert detail["deliveries"][0]["attempts"][0]["ok"] is True
