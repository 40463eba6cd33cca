"""The console's team view, customer page and rejected records over real HTTP: who may
open them, that they show what the store and the engine hold, scoped as the API scopes
the same key, and that CRM text is escaped. One Chromium test: the team view on a phone."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.conftest import Server  # type: ignore[import-not-found]

from sia.api.routes import console_team
from sia.service.team import monday

from .conftest import T0, browser, sign_in, store_alert
from .test_browser import artifacts, chromium  # noqa: F401  (fixtures of the browser test)

NOW = datetime.now(UTC).replace(microsecond=0)


def page_of(server: Server, who: str, path: str) -> httpx.Response:
    """`path` as the console shows it to a session of `who`'s key."""
    with browser(server) as client:
        assert sign_in(client, server.keys[who]).status_code == 303
        return client.get(path)


def table(html: str, table_id: str) -> list[list[str]]:
    """The body rows of a table: each cell's text, tags stripped."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert found, f"no table {table_id}"
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)]


def header(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table[^>]*id="{table_id}".*?<thead><tr>(.*?)</tr>', html, re.S)
    assert found, f"no table {table_id}"
    return re.findall(r"<th[^>]*>(.*?)</th>", found.group(1))


def test_a_manager_sees_their_team_only_and_the_chart_counts_match_the_store(
        server: Server) -> None:
    for day in (0, 1, 2, -7, -30):
        store_alert(server, f"C{day}", rep="R1", days=day)
    store_alert(server, "C9", rep="R3", days=3)
    store_alert(server, "D1", rep="R7", team="DE", days=1, title="A German alert")
    store_alert(server, "D2", rep="R7", team="DE", days=-100)  # before the 12 weeks anyway
    first = store_alert(server, "C0b", rep="R1", days=0.5)
    server.runtime.feedback.give(alert_id=first.alert_id, verdict="useful", rep_id="R1",
                                 source="api", who="key:x")
    server.runtime.feedback.give(alert_id=store_alert(server, "C1b", rep="R1", days=1.5)
                                 .alert_id, verdict="snooze_7d", rep_id="R1", source="api",
                                 who="key:x")
    with server.client("rep") as rep:  # R1 mutes a detector for themselves
        muted = rep.put("/v1/thresholds", headers={"If-Match": '"1"'}, json={
            "changes": [{"detector": "drift", "mute": True}], "reason": "not for me"})
        assert muted.status_code == 200, muted.text

    page = page_of(server, "manager_uk", "/console/team")
    assert page.status_code == 200, page.text
    assert "You see team UK" in page.text
    assert "R7" not in page.text and "D1" not in page.text and "German" not in page.text

    # what the store holds for team UK, per week (the newest alert's week is the last)
    with server.client("manager_uk") as api:
        stored = api.get("/v1/alerts", params={"limit": 500}).json()["items"]
    assert {a["team"] for a in stored} == {"UK"} and len(stored) == 8
    last = monday(T0 + timedelta(days=3))
    weeks = [last - timedelta(weeks=11 - i) for i in range(12)]
    counts = Counter((monday(datetime.fromisoformat(a["occurred_at"])), a["rep_id"])
                     for a in stored)
    assert header(page.text, "by-rep-table") == ["Week of", "R1", "R3", "All"]
    rows = table(page.text, "by-rep-table")
    assert [r[0] for r in rows] == [w.isoformat() for w in weeks]
    assert [[int(n) for n in r[1:]] for r in rows] == [
        [counts[(w, "R1")], counts[(w, "R3")], counts[(w, "R1")] + counts[(w, "R3")]]
        for w in weeks]
    assert rows[-1][1:] == ["5", "1", "6"] and rows[-2][1:] == ["1", "0", "1"]
    # the SVG draws the same numbers: a bar per (week, rep) with a count, named in its title
    assert f"<title>R1, week of {last:%d %b}: 5</title>" in page.text
    assert f"<title>R3, week of {last:%d %b}: 1</title>" in page.text
    assert re.search(r'<svg viewBox="0 0 640 240" role="img"', page.text)
    assert table(page.text, "by-detector-table")[-1][1:] == ["6", "6"]  # drift, all
    assert table(page.text, "feedback-table") == [
        ["Useful", "1", "50%"], ["Not useful", "0", "0%"], ["Done", "0", "0%"],
        ["Snooze this customer for 7 days", "1", "50%"]]
    assert "2 of 8 alerts of these weeks have feedback" in page.text
    assert "rep R1 muted drift" in page.text
    assert table(page.text, "snoozed")[0][:2] == ["customer C1b", "rep R1"]

    everyone = page_of(server, "admin", "/console/team")
    assert "You see every team" in everyone.text and "R7" in everyone.text
    assert header(everyone.text, "by-rep-table") == ["Week of", "R1", "R3", "R7", "All"]
    assert table(everyone.text, "by-rep-table")[-1][1:] == ["5", "1", "1", "7"]  # not D2


@pytest.mark.parametrize("path", ["/console/team", "/console/rejects"])
def test_a_rep_is_refused_the_team_and_rejects_pages(server: Server, path: str) -> None:
    refused = page_of(server, "rep", path)
    assert refused.status_code == 403
    assert "<h1>Refused</h1>" in refused.text and "a rep key may not use this page" in refused.text
    inbox = page_of(server, "rep", "/console")
    assert f'href="{path}"' not in inbox.text and 'href="/console"' in inbox.text
    with browser(server) as client:  # without a session: the sign-in form
        assert client.get(path).headers["location"] == "/console/sign-in"


def test_managers_get_the_team_link_and_only_admins_the_rejects_page(server: Server) -> None:
    manager = page_of(server, "manager_uk", "/console")
    assert 'href="/console/team"' in manager.text and 'href="/console/rejects"' not in manager.text
    assert page_of(server, "manager_uk", "/console/rejects").status_code == 403
    admin = page_of(server, "admin", "/console")
    assert 'href="/console/team"' in admin.text and 'href="/console/rejects"' in admin.text


def post_events(server: Server, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with server.client("crm") as crm:
        answer = crm.post("/v1/events", json={"events": events})
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def order(customer: str, days_ago: float, n: int) -> dict[str, Any]:
    return {"type": "order", "event_id": f"o-{customer}-{n}", "customer_id": customer,
            "order_id": f"{customer}-{n}", "currency": "GBP",
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
            "lines": [{"product_id": "P<1>", "quantity": 2, "unit_price": 50.0}]}


def test_the_customer_page_shows_the_rhythm_learned_and_open_alerts_escaped(
        server: Server) -> None:
    at = (NOW - timedelta(days=100)).isoformat()
    reference = [
        {"type": "rep", "event_id": "r1", "rep_id": "R1", "name": "Rae One", "team": "UK",
         "occurred_at": at},
        {"type": "rep", "event_id": "r2", "rep_id": "R2", "name": "Rob Two", "team": "UK",
         "occurred_at": at},
        {"type": "customer", "event_id": "c1", "customer_id": "C1", "owner_rep_id": "R1",
         "name": "<script>alert('acme')</script> & Sons", "segment": "<b>retail</b>",
         "occurred_at": at},
        {"type": "customer", "event_id": "c2", "customer_id": "C2", "owner_rep_id": "R2",
         "name": "Other Rep's Ltd", "occurred_at": at}]
    orders = [order("C1", 61 - 10 * i, i) for i in range(6)] + [order("C2", 5, 0)]
    assert {r["status"] for r in post_events(server, reference + orders)} == {"accepted"}
    server.wait_learned()
    store_alert(server, "C1", title="C1 <i>slows down</i>",
                explanation='"><img src=x onerror=alert(1)> ordered less')

    with browser(server) as client:
        sign_in(client, server.keys["rep"])
        inbox = client.get("/console")
        assert 'href="/console/customers/C1"' in inbox.text  # the inbox links to it
        page = client.get("/console/customers/C1")
        assert page.status_code == 200, page.text
        rhythm = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page.text.split(
            'id="rhythm"')[1].split("</dl>")[0]))
        assert rhythm["orders seen"] == "6"
        assert rhythm["typical days between orders"] == "10.0"
        assert rhythm["last order"] == (NOW - timedelta(days=11)).date().isoformat()
        assert "C1 &lt;i&gt;slows down&lt;/i&gt;" in page.text
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt; ordered less" in page.text
        assert "&lt;script&gt;alert(&#39;acme&#39;)&lt;/script&gt; &amp; Sons" in page.text
        assert "&lt;b&gt;retail&lt;/b&gt;" in page.text and "P&lt;1&gt;" in page.text
        for raw in ("<script>alert(", "<img src=x", "<i>slows", "<b>retail", "P<1>"):
            assert raw not in page.text
        assert "Rae One" in page.text and "C1-5" in page.text  # owner, newest order

        for other in ("C2", "nobody-at-all"):  # another rep's customer, an unknown one
            missing = client.get(f"/console/customers/{other}")
            assert missing.status_code == 404
            assert "<h1>Not found</h1>" in missing.text
            assert f"SIA knows no customer &#39;{other}&#39; of yours" in missing.text
    with server.client("rep") as api:  # the API answers the same
        assert api.get("/v1/customers/C2").status_code == 404
        assert api.get("/v1/customers/C1").json()["rhythm"]["orders"] == 6
    assert "Other Rep&#39;s Ltd" in page_of(server, "manager_uk", "/console/customers/C2").text
    store_alert(server, "D1", rep="R7", team="DE", title="A German alert")
    assert page_of(server, "manager_uk", "/console/customers/D1").status_code == 404
    assert "A German alert" in page_of(server, "admin", "/console/customers/D1").text


def test_an_admin_sees_rejected_records_newest_first_a_page_at_a_time(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {"type": "order", "event_id": "bad-1", "occurred_at": NOW.isoformat(),
           "order_id": "<script>x</script>", "lines": []}
    results = post_events(server, [bad, order("C1", 1, 0)])
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    for n in (2, 3):
        post_events(server, [{**bad, "event_id": f"bad-{n}"}])
    page = page_of(server, "admin", "/console/rejects")
    assert page.status_code == 200, page.text
    assert "customer_id: Field required" in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>x" not in page.text
    assert "from test crm#" in page.text
    order_seen = [page.text.index(f"event bad-{n}") for n in (3, 2, 1)]
    assert order_seen == sorted(order_seen)  # newest first

    monkeypatch.setattr(console_team, "REJECTS_PAGE", 2)
    with browser(server) as client:
        sign_in(client, server.keys["admin"])
        first = client.get("/console/rejects")
        assert "event bad-3" in first.text and "event bad-1" not in first.text
        older = re.search(r'href="(/console/rejects\?cursor=\d+)" rel="next"', first.text)
        assert older, first.text
        second = client.get(older.group(1))
        assert "event bad-1" in second.text and "event bad-3" not in second.text
        assert 'rel="next"' not in second.text
        broken = client.get("/console/rejects?cursor=x'")
        assert broken.status_code == 422 and "Not understood" in broken.text


@pytest.mark.browser
def test_a_manager_opens_the_team_view_on_a_phone(
        server: Server, chromium: Any, artifacts: Path) -> None:  # noqa: F811
    for day, rep in ((0, "R1"), (1, "R1"), (-7, "R3"), (-20, "R1"), (2, "R3")):
        store_alert(server, f"C{day}{rep}", rep=rep, days=day)
    store_alert(server, "D1", rep="R7", team="DE")
    context = chromium.new_context(viewport={"width": 360, "height": 740},
                                   device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/console/sign-in")
    page.get_by_label("API key").fill(server.keys["manager_uk"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console")
    page.get_by_role("link", name="Team").focus()
    page.keyboard.press("Enter")  # a real link: Enter follows it
    page.wait_for_url(f"{server.url}/console/team")
    chart = page.get_by_role("img", name="Alerts per week by rep")
    chart.wait_for()
    page.screenshot(path=str(artifacts / "team-phone-first-screen.png"))
    page.screenshot(path=str(artifacts / "team-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the team view scrolls sideways on a phone: {width} px wide"
    box = chart.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert box["height"] > 100  # drawn, not collapsed
    assert page.locator("svg.bars rect").count() == 4 + 3  # by rep, by detector
    assert "R7" not in page.content()
    context.close()
