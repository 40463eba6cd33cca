"""End to end in a real Chromium (Debian's, driven by Playwright): a rep signs in with
the keyboard, marks one alert useful and snoozes another, and the feedback is stored; a
manager previews, applies and rolls back a threshold; a rep cannot open the thresholds
page; the pages fit a phone's width. Screenshots go to test-artifacts/console/ (ignored
by git)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api.conftest import Server  # type: ignore[import-not-found]

from .conftest import snoozed, store_alert, verdicts

pytestmark = pytest.mark.browser


@pytest.fixture()
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go."""
    folder = request.config.rootpath / "test-artifacts" / "console" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def chromium(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium (no sandbox: the tests run as root)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def test_a_rep_marks_one_alert_useful_and_snoozes_another(
        server: Server, chromium: Any, artifacts: Path) -> None:
    useful = store_alert(server, "C1", value=4200.0, title="Customer C1 has gone quiet")
    later = store_alert(server, "C2", value=300.0, title="Customer C2 orders less")
    store_alert(server, "C3", rep="R2", title="Not for R1")
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/console")
    assert page.url.endswith("/console/sign-in")
    page.screenshot(path=str(artifacts / "1-sign-in.png"), full_page=True)
    page.get_by_label("API key").fill(server.keys["rep"])
    page.keyboard.press("Enter")  # the form submits from the keyboard
    page.wait_for_url(f"{server.url}/console")
    titles = page.get_by_role("heading", level=2).all_inner_texts()
    assert titles == ["Customer C1 has gone quiet", "Customer C2 orders less"]
    page.screenshot(path=str(artifacts / "2-inbox.png"), full_page=True)

    page.get_by_role("form", name="Feedback on Customer C1 has gone quiet") \
        .get_by_role("button", name="Useful", exact=True).click()
    page.get_by_role("status").filter(has_text="Saved: Useful.").wait_for()
    page.screenshot(path=str(artifacts / "3-marked-useful.png"), full_page=True)

    snooze = page.get_by_role("form", name="Feedback on Customer C2 orders less") \
        .get_by_role("button", name="Snooze this customer for 7 days")
    snooze.focus()
    page.keyboard.press("Enter")  # a real button: Enter presses it
    page.get_by_role("status").filter(has_text="Saved: Snooze this customer").wait_for()
    page.screenshot(path=str(artifacts / "4-snoozed.png"), full_page=True)
    assert page.locator(f"#alert-{later.alert_id} .verdict").inner_text() \
        == "You said: Snooze this customer for 7 days"

    assert verdicts(server) == [(useful.alert_id, "useful", "console", "R1"),
                                (later.alert_id, "snooze_7d", "console", "R1")]
    assert snoozed(server) == [("customer", "C2", "R1")]
    with server.client("rep") as api:
        for a, verdict in ((useful, "useful"), (later, "snooze_7d")):
            stored = api.get(f"/v1/alerts/{a.alert_id}").json()["feedback"]
            assert [f["verdict"] for f in stored] == [verdict]

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.url}/console/sign-in")
    page.goto(f"{server.url}/console")
    assert page.url.endswith("/console/sign-in")


def test_the_inbox_fits_a_phone(server: Server, chromium: Any, artifacts: Path) -> None:
    store_alert(server, "C1", title="A very long customer name " * 4,
                explanation="explained at length " * 20,
                facts={f"fact_{i}": 1000 * i for i in range(8)})
    context = chromium.new_context(viewport={"width": 360, "height": 740},
                                   device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/console/sign-in")
    page.screenshot(path=str(artifacts / "1-sign-in-phone.png"), full_page=True)
    page.get_by_label("API key").fill(server.keys["rep"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/console")
    page.screenshot(path=str(artifacts / "2-inbox-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways on a phone: {width} px wide"
    for button in page.get_by_role("button").all():
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    context.close()


def test_a_manager_previews_applies_and_rolls_back_a_threshold(
        retail_server: Server, chromium: Any, artifacts: Path) -> None:
    server = retail_server
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/console/sign-in")
    page.get_by_label("API key").fill(server.keys["manager"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console")
    page.get_by_role("link", name="Thresholds").click()
    page.wait_for_url(f"{server.url}/console/thresholds")
    page.get_by_label("Team (empty: the defaults every team starts from)").fill("UK")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console/thresholds?team=UK")
    page.screenshot(path=str(artifacts / "1-thresholds.png"), full_page=True)

    form = page.get_by_role("form", name="Change margin.min_z")
    form.get_by_role("textbox").fill("abc")
    form.get_by_role("button", name="Preview").click()
    page.get_by_role("alert").filter(has_text="'abc' is not a number").wait_for()
    page.screenshot(path=str(artifacts / "2-not-a-number.png"), full_page=True)

    form = page.get_by_role("form", name="Change margin.min_z")
    box = form.get_by_role("textbox")
    box.fill("4")
    box.press("Enter")  # the keyboard submits the preview
    page.get_by_role("heading", name="Alerts per week, before and after").wait_for()
    assert page.locator("svg.chart rect").count() >= 2
    removed = page.get_by_role("heading", name=re.compile(r"Alerts it would remove: \d+"))
    assert int(removed.inner_text().rsplit(" ", 1)[1]) > 0
    page.screenshot(path=str(artifacts / "3-preview.png"), full_page=True)

    page.get_by_label("Reason (kept in the history)").fill("UK margin alerts are noisy")
    page.get_by_role("button", name="Apply margin.min_z = 4.0").click()
    page.get_by_role("status").filter(has_text="Applied as version 2.").wait_for()
    assert "team UK" in page.locator("#t-margin-min_z .source").inner_text()
    page.screenshot(path=str(artifacts / "4-applied.png"), full_page=True)

    page.get_by_role("link", name="History and rollback").click()
    page.wait_for_url(f"{server.url}/console/thresholds/history")
    assert "UK margin alerts are noisy" in page.locator("#version-2").inner_text()
    page.screenshot(path=str(artifacts / "5-history.png"), full_page=True)
    rollback = page.get_by_role("form", name="Roll back to version 1")
    rollback.get_by_label("Reason to restore version 1").fill("back to the files")
    rollback.get_by_role("button", name="Roll back to version 1").click()
    page.get_by_role("status").filter(has_text="Rolled back: now version 3.").wait_for()
    page.screenshot(path=str(artifacts / "6-rolled-back.png"), full_page=True)
    with server.client("admin") as api:
        history = api.get("/v1/thresholds/history").json()
    assert [(v["version"], v["kind"]) for v in history] == [
        (3, "rollback"), (2, "apply"), (1, "initial")]
    assert history[0]["reason"] == "back to the files"


def test_the_thresholds_page_fits_a_phone(server: Server, chromium: Any,
                                          artifacts: Path) -> None:
    context = chromium.new_context(viewport={"width": 360, "height": 740},
                                   device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/console/sign-in")
    page.get_by_label("API key").fill(server.keys["manager_uk"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/console")
    page.goto(f"{server.url}/console/thresholds")
    page.screenshot(path=str(artifacts / "1-thresholds-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways on a phone: {width} px wide"
    context.close()


def test_a_rep_cannot_open_the_thresholds_page(server: Server, chromium: Any,
                                               artifacts: Path) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/console/sign-in")
    page.get_by_label("API key").fill(server.keys["rep"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/console")
    nav = page.get_by_role("navigation", name="Console")
    assert "Thresholds" not in nav.inner_text()  # not offered ...
    response = page.goto(f"{server.url}/console/thresholds")
    assert response is not None and response.status == 403  # ... and refused when typed
    assert "a rep key may not use this page" in page.content()
    assert page.get_by_role("button", name="Preview").count() == 0
    page.screenshot(path=str(artifacts / "1-refused.png"), full_page=True)
