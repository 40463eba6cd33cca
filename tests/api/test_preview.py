"""Previewing a threshold change on a real server: before and after over the journal's
last days, only what the change touches moves, nothing is stored or sent, and applying
the change gives the alerts the preview predicted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sia.cli.demo import DATASETS, load
from sia.engine.driver import Driver
from sia.engine.engine import Engine
from sia.evaluation.evaluate import evaluate
from sia.events.models import Event
from sia.policy import Alert
from sia.service.pipeline import build

from .conftest import Server, serving
from .test_live import all_alerts, post_all

CHANGE = [{"detector": "drift", "team": "UK", "set": {"lost_probability": 0.9}}]


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


def preview(server: Server, who: str, changes: list[dict[str, Any]], days: float = 90,
            **more: Any) -> Any:
    with server.client(who) as client:
        return client.post("/v1/thresholds/preview",
                           json={"changes": changes, "days": days, **more})


def test_a_preview_shows_what_changes_and_changes_nothing(tmp_path: Path,
                                                         retail: list[Event]) -> None:
    with serving(tmp_path / "data") as server:
        post_all(server, [e.model_dump(mode="json") for e in retail])
        server.wait_learned()
        stored = len(all_alerts(server))
        journal = server.runtime.journal.count()
        response = preview(server, "manager_uk", CHANGE)
        assert response.status_code == 200, response.text
        result = response.json()
        before, after = result["before"], result["after"]
        assert result["version"] == 1 and result["window"]["events"] > 1000
        assert before["alerts"] > after["alerts"]
        removed = result["removed"]
        assert removed["count"] > 0 and set(removed["by_detector"]) == {"drift"}
        assert all(a["team"] == "UK" and a["detector"] == "drift"
                   for a in removed["sample"])
        assert set(result["added"]["by_detector"]) <= {"drift"}
        for detector in set(before["by_detector"]) - {"drift"}:  # the others do not move
            assert before["by_detector"][detector] == after["by_detector"][detector]
        assert before["alerts"] - removed["count"] + result["added"]["count"] == \
            after["alerts"]
        assert before["busiest_rep"]["alerts_per_week"] > 0
        assert removed["sample"][0]["explanation"]  # what a manager reads
        # a sandbox: no alert stored, no event, no version
        assert len(all_alerts(server)) == stored
        assert server.runtime.journal.count() == journal
        assert server.runtime.thresholds.current().version == 1
        same = preview(server, "admin", [{"detector": "drift", "set": {"lost_probability": 0.8}}])
        assert same.json()["added"]["count"] == same.json()["removed"]["count"] == 0
        wrong = preview(server, "admin", [{"detector": "drift",
                                           "set": {"lost_probability": 7}}])
        assert wrong.status_code == 422 and "lost_probability" in wrong.json()["detail"]
        other_team = preview(server, "manager_uk", [{"detector": "drift", "team": "US",
                                                     "set": {"lost_probability": 0.9}}])
        assert other_team.status_code == 403


def test_an_applied_change_gives_the_alerts_its_preview_predicted(
        tmp_path: Path, retail: list[Event]) -> None:
    events = [e.model_dump(mode="json") for e in retail]
    with serving(tmp_path / "a") as server:
        post_all(server, events)
        server.wait_learned()
        result = preview(server, "admin", CHANGE).json()
    start = datetime.fromisoformat(result["window"]["from"])
    split = next(i for i, e in enumerate(retail) if e.occurred_at >= start)
    with serving(tmp_path / "b") as server:  # the same journal, changed at the window start
        post_all(server, events[:split])
        server.wait_learned()
        before_change = {a["alert_id"] for a in all_alerts(server)}
        with server.client("admin") as client:
            done = client.put("/v1/thresholds", json={"changes": CHANGE, "reason": "as "
                                                      "previewed"}, headers={"If-Match": '"1"'})
        assert done.status_code == 200, done.text
        post_all(server, events[split:])
        server.wait_learned()
        after_change = {a["alert_id"] for a in all_alerts(server)} - before_change
    assert len(after_change) == result["after"]["alerts"]
    predicted = {a["alert_id"] for a in result["added"]["sample"]}
    assert predicted <= after_change  # what the preview said the change would add
    removed = {a["alert_id"] for a in result["removed"]["sample"]}
    assert not removed & after_change  # ... and remove


def test_precision_before_and_after_is_what_sia_evaluate_s_judges_say(
        tmp_path: Path, retail: list[Event]) -> None:
    with serving(tmp_path / "data") as server:
        post_all(server, [e.model_dump(mode="json") for e in retail])
        server.wait_learned()
        stored = len(all_alerts(server))
        short = preview(server, "manager_uk", CHANGE).json()  # 90 days, 90-day outcomes
        response = preview(server, "manager_uk", CHANGE, days=300, horizon_days=60)
        assert response.status_code == 200, response.text
        result = response.json()
        assert len(all_alerts(server)) == stored  # judging stores nothing either
        refused = preview(server, "admin", CHANGE, horizon_days=0)
        assert refused.status_code == 422 and "horizon_days" in refused.text
    # over the last 90 days no 90-day outcome is known yet: counted, never guessed
    for side in ("before", "after"):
        figures = short[side]["precision"]
        assert figures["horizon_days"] == 90 and figures["judged"] == 0
        assert figures["precision"] is None
        for row in figures["by_detector"].values():
            assert row["judged"] == 0 and row["precision"] is None
            assert row["not_yet_judgeable"] <= row["alerts"]
    before, after = result["before"]["precision"], result["after"]["precision"]
    assert before["judged"] > 0 and after["judged"] > 0
    for side, figures in (("before", before), ("after", after)):
        assert figures["horizon_days"] == 60
        assert figures["judged"] <= result[side]["alerts"]
        assert 0 <= figures["precision"] <= 1
        assert figures["judged"] == sum(r["judged"] for r in figures["by_detector"].values())
        for name, row in figures["by_detector"].items():
            assert row["alerts"] == result[side]["by_detector"].get(name, {}).get("alerts", 0)
            assert row["judged"] + row["not_yet_judgeable"] <= row["alerts"]
            assert 0 <= row["correct"] <= row["judged"]
            assert row["precision"] is None if not row["judged"] else \
                0 <= row["precision"] <= 1
    for name in set(before["by_detector"]) - {"drift"}:  # only drift's alerts moved
        assert before["by_detector"][name] == after["by_detector"][name]
    # the same alerts judged independently: one engine over the same events, the
    # alerts from the window's start, judged by sia evaluate
    start = datetime.fromisoformat(result["window"]["from"])
    detectors, policy = build()

    def window_alerts(events: Iterable[Event]) -> Iterator[Alert]:
        driver, chunk = Driver(Engine(detectors)), []
        for event in events:
            chunk.append(event)
            if len(chunk) == 2048:
                yield from (a for f in driver.feed(chunk) if (a := policy.admit(f))
                            and a.finding.occurred_at >= start)
                chunk = []
        yield from (a for f in driver.feed(chunk) if (a := policy.admit(f))
                    and a.finding.occurred_at >= start)

    report = evaluate(retail, detectors, policy, horizon_days=60, alerting=window_alerts)
    assert report["detectors"]
    for name, judged in report["detectors"].items():
        row = before["by_detector"][name]
        assert (row["judged"], row["not_yet_judgeable"], row["precision"]) == \
            (judged["alerts"], judged["unjudged"], judged["precision"]), name
