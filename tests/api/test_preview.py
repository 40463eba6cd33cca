"""Previewing a threshold change on a real server: before and after over the journal's
last days, only what the change touches moves, nothing is stored or sent, and applying
the change gives the alerts the preview predicted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sia.cli.demo import DATASETS, load
from sia.events.models import Event

from .conftest import Server, serving
from .test_live import all_alerts, post_all

CHANGE = [{"detector": "drift", "team": "UK", "set": {"lost_probability": 0.9}}]


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


def preview(server: Server, who: str, changes: list[dict[str, Any]], days: float = 90) -> Any:
    with server.client(who) as client:
        return client.post("/v1/thresholds/preview", json={"changes": changes, "days": days})


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
