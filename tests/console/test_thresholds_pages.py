"""The console's Thresholds pages over real HTTP: a manager sees their team's values with
source, unit and range; a preview shows before and after; a value that does not validate
shows the API's reason next to its field; apply makes a version the API's history lists;
rollback; a stale version is 409; a rep is refused; a form without its CSRF token too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from api.conftest import Server  # type: ignore[import-not-found]

from .conftest import browser, csrf_of, sign_in


@contextmanager
def signed_in(server: Server, who: str) -> Iterator[httpx.Client]:
    with browser(server) as client:
        assert sign_in(client, server.keys[who]).status_code == 303
        yield client


def preview_form(page: httpx.Response, detector: str, key: str, value: str,
                 team: str = "") -> dict[str, str]:
    return {"csrf": csrf_of(page), "team": team, "detector": detector, "key": key,
            "value": value}


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'type="hidden" name="{name}" value="([^"]*)"', page.text)
    assert found, page.text[:3000]
    return found.group(1)


def test_a_team_manager_sees_their_team_s_values(server: Server) -> None:
    with server.client("admin") as api:  # a team override, as the API records it
        done = api.put("/v1/thresholds", headers={"If-Match": '"1"'}, json={
            "changes": [{"detector": "drift", "team": "UK",
                         "set": {"lost_probability": 0.9}}], "reason": "setup"})
        assert done.status_code == 200, done.text
    with signed_in(server, "manager_uk") as client:
        inbox = client.get("/console")
        assert 'href="/console/thresholds"' in inbox.text  # the nav link
        page = client.get("/console/thresholds")
        assert page.status_code == 200, page.text
        assert "Thresholds for team UK" in page.text and "Version 2" in page.text
        assert 'for="v-drift-lost_probability"' in page.text  # a labelled field
        assert 'id="v-drift-lost_probability"' in page.text
        row = page.text.split('id="t-drift-lost_probability"')[1].split("</li>")[0]
        assert 'value="0.9"' in row and "team UK" in row and "probability 0..1" in row
        assert "at least 0.5 and below 1" in row
        assert "default 0.8" in row
        assert 'name="team" type="text"' not in page.text  # no team picker: their own
        assert client.get("/console/thresholds", params={"team": "US"}).status_code == 403
    with signed_in(server, "manager") as client:  # unscoped: picks a team or defaults
        page = client.get("/console/thresholds")
        assert "the defaults" in page.text and 'name="team" type="text"' in page.text
        row = page.text.split('id="t-drift-lost_probability"')[1].split("</li>")[0]
        assert 'value="0.8"' in row and "configured" in row
        us = client.get("/console/thresholds", params={"team": "UK"})
        assert "Thresholds for team UK" in us.text


def test_a_rep_gets_a_403_page_and_no_link(server: Server) -> None:
    with signed_in(server, "rep") as client:
        assert 'href="/console/thresholds"' not in client.get("/console").text
        for path in ("/console/thresholds", "/console/thresholds/history"):
            refused = client.get(path)
            assert refused.status_code == 403
            assert "a rep key may not use this page" in refused.text
        token = csrf_of(client.get("/console"))
        refused = client.post("/console/thresholds/apply", data={
            "csrf": token, "detector": "drift", "key": "lost_probability", "value": "0.9",
            "version": "1", "reason": "mine"})
        assert refused.status_code == 403
    assert server.runtime.thresholds.current().version == 1


def test_a_value_that_does_not_validate_shows_the_reason_by_its_field(
        server: Server) -> None:
    with signed_in(server, "manager_uk") as client:
        page = client.get("/console/thresholds")
        for value, says in (("1.5", "teams.UK.drift.lost_probability"),
                            ("lots", "&#39;lots&#39; is not a number")):
            wrong = client.post("/console/thresholds/preview",
                                data=preview_form(page, "drift", "lost_probability", value))
            assert wrong.status_code == 422, wrong.text
            row = wrong.text.split('id="t-drift-lost_probability"')[1].split("</li>")[0]
            assert 'class="error field-error"' in row and says in row
            assert f'value="{value}"' in row and 'aria-invalid="true"' in row
    assert server.runtime.thresholds.current().version == 1


def test_every_threshold_post_without_the_csrf_token_is_refused(server: Server) -> None:
    with signed_in(server, "admin") as client:
        page = client.get("/console/thresholds")
        form = preview_form(page, "drift", "lost_probability", "0.9")
        for path, extra in (("/console/thresholds/preview", {}),
                            ("/console/thresholds/apply", {"version": "1", "reason": "r"}),
                            ("/console/thresholds/rollback",
                             {"version": "1", "expected": "1", "reason": "r"})):
            for token in (None, "", "x" * 43):
                data = {**form, **extra}
                data.pop("csrf")
                if token is not None:
                    data["csrf"] = token
                refused = client.post(path, data=data)
                assert refused.status_code == 403, (path, token)
                assert "did not come from this console" in refused.text
            cross = client.post(path, data={**form, **extra},
                                headers={"Origin": "https://evil.example"})
            assert cross.status_code == 403 and "another site" in cross.text
    assert server.runtime.thresholds.current().version == 1


def test_preview_apply_history_rollback_and_a_stale_version(retail_server: Server) -> None:
    server = retail_server
    with signed_in(server, "manager") as client:
        page = client.get("/console/thresholds", params={"team": "UK"})
        shown = client.post("/console/thresholds/preview", data=preview_form(
            page, "margin", "min_z", "4", team="UK"))
        assert shown.status_code == 200, shown.text
        text = shown.text
        assert "Alerts per week, before and after" in text and "<svg" in text
        assert "Alerts it would add" in text and "Alerts it would remove" in text
        assert "busiest rep before" in text and "By team" in text
        assert "precision, all judged" in text
        removed = re.search(r"Alerts it would remove: (\d+)", text)
        assert removed and int(removed.group(1)) > 0, text  # a higher bar: fewer alerts
        assert "team UK" in text.split("Alerts it would remove")[1]  # only UK's go
        assert hidden(shown, "version") == "1" and hidden(shown, "value") == "4.0"
        assert 'for="reason"' in text
        apply = {k: hidden(shown, k) for k in ("csrf", "team", "detector", "key", "value",
                                               "version")}
        no_reason = client.post("/console/thresholds/apply", data={**apply, "reason": " "})
        assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
        done = client.post("/console/thresholds/apply",
                           data={**apply, "reason": "UK wants earlier warnings"})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/console/thresholds?team=UK&saved=2#margin"
        after = client.get(done.headers["location"])
        assert "Applied as version 2." in after.text and "Version 2" in after.text
        stale = client.post("/console/thresholds/apply", data={**apply, "value": "5",
                                                               "reason": "again"})
        assert stale.status_code == 409
        assert "the thresholds are at version 2, not 1" in stale.text

        with server.client("admin") as api:
            history = api.get("/v1/thresholds/history").json()
        assert [v["version"] for v in history] == [2, 1]
        assert history[0]["who"] == "test manager" and \
            history[0]["reason"] == "UK wants earlier warnings"
        assert history[0]["diff"] == [{"detector": "margin", "key": "min_z",
                                       "scope": "team", "name": "UK", "before": None,
                                       "after": 4.0}]

        listed = client.get("/console/thresholds/history")
        assert listed.status_code == 200
        assert "UK wants earlier warnings" in listed.text and "by test manager" in listed.text
        assert "margin.min_z</code> (team UK):\n      none → 4.0" in listed.text
        assert 'for="reason-1"' in listed.text and "Roll back to version 1" in listed.text
        assert "Roll back to version 2" not in listed.text  # the current one
        token = csrf_of(listed)
        no_reason = client.post("/console/thresholds/rollback", data={
            "csrf": token, "version": "1", "expected": "2", "reason": ""})
        assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
        stale = client.post("/console/thresholds/rollback", data={
            "csrf": token, "version": "1", "expected": "1", "reason": "undo"})
        assert stale.status_code == 409 and "not 1" in stale.text
        back = client.post("/console/thresholds/rollback", data={
            "csrf": token, "version": "1", "expected": "2", "reason": "too many alerts"})
        assert back.status_code == 303
        assert back.headers["location"] == "/console/thresholds/history?rolled=3"
        assert "Rolled back: now version 3." in client.get(back.headers["location"]).text
    with server.client("admin") as api:
        history = api.get("/v1/thresholds/history").json()
    assert [(v["version"], v["kind"], v["rollback_of"]) for v in history] == [
        (3, "rollback", 1), (2, "apply", None), (1, "initial", None)]
    assert server.runtime.thresholds.current().version == 3
    with signed_in(server, "manager_uk") as client:  # a team's manager cannot roll back
        listed = client.get("/console/thresholds/history")
        assert "Roll back to version" not in listed.text and "needs an admin key" in listed.text
        refused = client.post("/console/thresholds/rollback", data={
            "csrf": csrf_of(listed), "version": "2", "expected": "3", "reason": "mine"})
        assert refused.status_code == 403
