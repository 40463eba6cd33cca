"""Managers tune thresholds on a real server: see each value and where it comes from,
change it with a reason against the version they saw, see the history, roll back; the
running engine takes each version without relearning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sia.cli.demo import DATASETS, load

from .conftest import Server, serving
from .test_live import all_alerts, post_all


def put(server: Server, who: str, changes: list[dict[str, Any]], *, version: int | None,
        reason: str = "tuning") -> Any:
    headers = {"If-Match": f'"{version}"'} if version is not None else {}
    with server.client(who) as client:
        return client.put("/v1/thresholds", json={"changes": changes, "reason": reason},
                          headers=headers)


def test_thresholds_show_value_source_description_and_version(server: Server) -> None:
    with server.client("manager") as client:
        response = client.get("/v1/thresholds", params={"team": "UK"})
    assert response.status_code == 200 and response.headers["etag"] == '"1"'
    body = response.json()
    assert body["version"] == 1
    lost = body["detectors"]["drift"]["thresholds"]["lost_probability"]
    assert lost["value"] == 0.8 and lost["source"] == "configured" and lost["default"] == 0.8
    assert lost["global"] is False
    assert body["detectors"]["drift"]["thresholds"]["horizon_days"]["global"] is True
    assert body["policy"]["cooldown_days"]["values"]["cross_sell"]["value"] == 90
    with server.client("manager_uk") as client:
        assert client.get("/v1/thresholds", params={"team": "US"}).status_code == 403
        assert client.get("/v1/thresholds").json()["team"] == "UK"
    with server.client("rep") as client:  # a rep sees their own (see the rep tests below)
        mine = client.get("/v1/thresholds")
        assert mine.status_code == 200 and mine.json()["rep"] == "R1"
        assert client.get("/v1/thresholds", params={"rep": "R2"}).status_code == 403
        assert client.get("/v1/thresholds", params={"team": "UK"}).status_code == 403


def test_a_change_is_validated_versioned_applied_and_rolled_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    change = [{"detector": "drift", "team": "UK", "set": {"lost_probability": 0.9}}]
    with serving(data) as server:
        assert put(server, "manager_uk", change, version=None).status_code == 428
        stale = put(server, "manager_uk", change, version=7)
        assert stale.status_code == 409 and "version 1, not 7" in stale.json()["detail"]
        wrong = put(server, "manager_uk", [{"detector": "drift", "team": "UK",
                                            "set": {"lost_probability": 1.5}}], version=1)
        assert wrong.status_code == 422
        assert "teams.UK.drift.lost_probability" in wrong.json()["detail"]
        unknown = put(server, "admin", [{"detector": "drift", "set": {"lost_probabilty": 0.9}}],
                      version=1)
        assert unknown.status_code == 422 and "lost_probabilty: unknown key" in \
            unknown.json()["detail"]
        other = put(server, "manager_uk", [{"detector": "drift", "team": "US",
                                            "set": {"lost_probability": 0.9}}], version=1)
        assert other.status_code == 403 and "team UK" in other.json()["detail"]
        learned = put(server, "admin", [{"detector": "drift", "set": {"horizon_days": 60}}],
                      version=1)
        assert learned.status_code == 422 and "shapes what was learned" in \
            learned.json()["detail"]
        assert server.runtime.thresholds.versions.count() == 1  # nothing refused was kept

        done = put(server, "manager_uk", change, version=1, reason="UK reps flagged too early")
        assert done.status_code == 200, done.text
        assert done.headers["etag"] == '"2"'
        recorded = done.json()["recorded"]
        assert recorded["who"] == "test manager_uk" and recorded["reason"] == \
            "UK reps flagged too early"
        assert recorded["diff"] == [{"detector": "drift", "key": "lost_probability",
                                     "scope": "team", "name": "UK", "before": None,
                                     "after": 0.9}]
        assert recorded["outcome"] == {"service": "applied to the live engine"}
        assert server.status()["thresholds_version"] == 2  # the engine runs it
        with server.client("manager") as client:
            view = client.get("/v1/thresholds", params={"team": "UK"}).json()
        lost = view["detectors"]["drift"]["thresholds"]["lost_probability"]
        assert (lost["value"], lost["source"]) == (0.9, "team UK")
        assert lost["overrides"] == {"team UK": 0.9}

        same = put(server, "manager_uk", change, version=2)
        assert same.json() == {"changed": False, "version": 2, "recorded": None}

        with server.client("manager_uk") as client:
            refused = client.post("/v1/thresholds/rollback", json={
                "version": 1, "reason": "undo"}, headers={"If-Match": '"2"'})
        assert refused.status_code == 403
        with server.client("admin") as client:
            back = client.post("/v1/thresholds/rollback", json={
                "version": 1, "reason": "back to the files"}, headers={"If-Match": '"2"'})
            assert back.status_code == 200, back.text
            assert back.json()["recorded"]["rollback_of"] == 1
            history = client.get("/v1/thresholds/history").json()
        assert [v["version"] for v in history] == [3, 2, 1]
        assert [v["kind"] for v in history] == ["rollback", "apply", "initial"]
        assert history[0]["diff"][0]["before"] == 0.9 and history[0]["diff"][0]["after"] is None
        assert server.status()["thresholds_version"] == 3
    with serving(data) as server:  # after a restart: the newest version, not the files
        assert server.runtime.thresholds.current().version == 3
        put(server, "admin", [{"detector": "drift", "set": {"lost_probability": 0.85}}],
            version=3)
    with serving(data) as server:
        assert server.status()["thresholds_version"] == 4
        with server.client("admin") as client:
            lost = client.get("/v1/thresholds").json()["detectors"]["drift"]["thresholds"][
                "lost_probability"]
        assert (lost["value"], lost["source"]) == (0.85, "configured")


def mine(server: Server, detector: str = "drift") -> dict[str, Any]:
    with server.client("rep") as client:
        response = client.get("/v1/thresholds")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()["detectors"][detector]
    return shown


def test_a_rep_raises_their_own_threshold_never_lowers_it(server: Server) -> None:
    """The rep key is bound to rep R1: its changes are R1's, recorded in the same history,
    applied to the running engine, undone by a rollback."""
    lost = mine(server)["thresholds"]["lost_probability"]
    assert (lost["value"], lost["source"], lost["fewer_alerts"]) == (0.8, "configured",
                                                                    "higher")
    assert mine(server)["thresholds"]["gap_alpha"]["fewer_alerts"] is None
    raise_it = [{"detector": "drift", "set": {"lost_probability": 0.9}}]
    done = put(server, "rep", raise_it, version=1, reason="I call my regulars every month")
    assert done.status_code == 200, done.text
    recorded = done.json()["recorded"]
    assert (recorded["who"], recorded["role"], recorded["kind"]) == ("test rep", "rep", "rep")
    assert recorded["reason"] == "I call my regulars every month"
    assert recorded["diff"] == [{"detector": "drift", "key": "lost_probability",
                                 "scope": "rep", "name": "R1", "before": None, "after": 0.9}]
    assert recorded["outcome"] == {"service": "applied to the live engine"}
    assert server.status()["thresholds_version"] == 2
    lost = mine(server)["thresholds"]["lost_probability"]
    assert (lost["value"], lost["source"]) == (0.9, "rep R1")
    with server.client("manager") as client:  # the team's view is not the rep's
        team = client.get("/v1/thresholds", params={"team": "UK"}).json()
    assert team["detectors"]["drift"]["thresholds"]["lost_probability"]["value"] == 0.8

    lower = put(server, "rep", [{"detector": "drift", "set": {"lost_probability": 0.7}}],
                version=2)
    assert lower.status_code == 422
    detail = lower.json()["detail"]
    assert "reps.R1.drift.lost_probability: 0.7 would give more alerts than the 0.8" in detail
    assert 'rep key "test rep"' in detail and "may only set it higher" in detail
    learning = put(server, "rep", [{"detector": "drift", "set": {"gap_alpha": 0.5}}],
                   version=2)
    assert learning.status_code == 422 and "drift.gap_alpha: a learning parameter" in \
        learning.json()["detail"]
    other = put(server, "rep", [{"detector": "drift", "rep": "R2",
                                 "set": {"lost_probability": 0.95}}], version=2)
    assert other.status_code == 403 and "not rep R2's" in other.json()["detail"]
    team_change = put(server, "rep", [{"detector": "drift", "team": "UK",
                                       "set": {"lost_probability": 0.95}}], version=2)
    assert team_change.status_code == 403
    managers = put(server, "manager_uk", [{**raise_it[0], "rep": "R1"}], version=2)
    assert managers.status_code == 403  # a team's manager cannot vouch for a rep's team
    assert server.runtime.thresholds.versions.count() == 2  # nothing refused was kept

    with server.client("admin") as client:
        history = client.get("/v1/thresholds/history").json()
        assert [(v["version"], v["who"]) for v in history] == [
            (2, "test rep"), (1, "configuration files")]
        back = client.post("/v1/thresholds/rollback", json={"version": 1, "reason": "undo"},
                           headers={"If-Match": '"2"'})
    assert back.status_code == 200, back.text
    assert back.json()["recorded"]["diff"][0]["before"] == 0.9
    lost = mine(server)["thresholds"]["lost_probability"]
    assert (lost["value"], lost["source"]) == (0.8, "configured")
    assert server.status()["thresholds_version"] == 3


def test_a_rep_is_held_to_the_team_the_crm_says_they_are_in(server: Server) -> None:
    """"Never lower" is judged against the thresholds of the rep's team as the CRM's
    newest record of the rep says, also before the rep has any alert, and after a move."""
    teams = [{"detector": "drift", "team": "UK", "set": {"lost_probability": 0.95}},
             {"detector": "drift", "team": "US", "set": {"lost_probability": 0.85}}]
    assert put(server, "admin", teams, version=1).status_code == 200

    def joins(team: str, n: int) -> None:
        post_all(server, [{"event_id": f"r1-{n}", "type": "rep", "rep_id": "R1",
                           "name": "Rep One", "team": team,
                           "occurred_at": f"2011-0{n}-01T09:00:00Z"}])

    raise_it = [{"detector": "drift", "set": {"lost_probability": 0.9}}]
    joins("UK", 1)
    refused = put(server, "rep", raise_it, version=2)
    assert refused.status_code == 422
    assert "than the 0.95 that applies to rep R1's customers (team UK)" in \
        refused.json()["detail"]
    joins("US", 2)  # moved to the US team, whose value is lower: 0.9 is a raise there
    done = put(server, "rep", raise_it, version=2)
    assert done.status_code == 200, done.text
    assert server.runtime.thresholds.rep_team("R1") == "US"
    assert server.runtime.thresholds.rep_team("R9") is None  # never heard of


def as_r1(event: dict[str, Any]) -> dict[str, Any]:
    """The demo's rep-alex-morgan (team UK, most customers) as R1, the rep key's rep."""
    return {k: "R1" if v == "rep-alex-morgan" else v for k, v in event.items()}


def test_a_mute_keeps_the_alerts_but_not_for_the_rep(tmp_path: Path) -> None:
    events = [as_r1(e.model_dump(mode="json")) for e in load(DATASETS[0])[0]]
    with serving(tmp_path / "data") as server:
        muted = put(server, "rep", [{"detector": "drift", "mute": True}], version=1,
                    reason="I track my accounts' rhythm in the CRM")
        assert muted.status_code == 200, muted.text
        assert muted.json()["recorded"]["diff"] == [{
            "detector": "drift", "key": "muted", "scope": "rep", "name": "R1",
            "before": False, "after": True}]
        assert server.status()["delivery"]["muted"] == {"R1": ["drift"]}  # the dispatcher's
        assert put(server, "crm", [{"detector": "drift", "mute": True}],
                   version=2).status_code == 403
        post_all(server, events)
        server.wait_learned()
        stored = all_alerts(server, "admin", rep="R1", detector="drift")
        assert stored, "the demo gives rep R1 drift alerts"
        assert all_alerts(server, "rep", detector="drift") == []  # not for the rep
        assert all_alerts(server, "rep")  # the other detectors' are
        assert len(all_alerts(server, "rep", detector="drift", muted="true")) == len(stored)
        assert mine(server)["muted"] is True and mine(server, "trend")["muted"] is False
        with server.client("rep") as client:  # the rep's team, from their alerts
            assert client.get("/v1/thresholds").json()["team"] == "UK"
        with server.client("admin") as client:
            back = client.post("/v1/thresholds/rollback", json={
                "version": 1, "reason": "R1 asked to hear drift again"},
                headers={"If-Match": '"2"'})
        assert back.status_code == 200, back.text
        assert server.status()["delivery"]["muted"] == {}
        assert len(all_alerts(server, "rep", detector="drift")) == len(stored)
        assert mine(server)["muted"] is False


def test_a_rep_s_raise_gives_fewer_alerts_to_that_rep_only(tmp_path: Path) -> None:
    events = [as_r1(e.model_dump(mode="json")) for e in load(DATASETS[0])[0]]
    counts = []
    for name, raised in (("plain", False), ("raised", True)):
        with serving(tmp_path / name) as server:
            if raised:
                assert put(server, "rep", [{"detector": "drift", "set": {
                    "lost_probability": 0.95}}], version=1).status_code == 200
            post_all(server, events)
            server.wait_learned()
            if not raised:
                _rep_previews_own_alerts(server)
            drift = all_alerts(server, "admin", detector="drift")
            counts.append((sum(a["rep_id"] == "R1" for a in drift),
                           sorted(a["alert_id"] for a in drift if a["rep_id"] != "R1")))
    (plain_r1, plain_others), (raised_r1, raised_others) = counts
    assert raised_r1 < plain_r1
    assert plain_others and raised_others == plain_others  # the other reps' do not move


def _rep_previews_own_alerts(server: Server) -> None:
    """A rep previews their own raise and sees their own alerts only; a lower value is
    refused as it would be on apply."""
    with server.client("rep") as client:
        lower = client.post("/v1/thresholds/preview", json={"changes": [
            {"detector": "drift", "set": {"lost_probability": 0.5}}]})
        assert lower.status_code == 422 and "may only set it higher" in lower.text
        answer = client.post("/v1/thresholds/preview", json={"changes": [
            {"detector": "drift", "set": {"lost_probability": 0.95}}]})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["rep"] == "R1" and result["removed"]["count"] > 0
    for side in ("added", "removed"):
        assert all(a["rep_id"] == "R1" for a in result[side]["sample"])
    for side in ("before", "after"):
        assert result[side]["busiest_rep"]["rep_id"] == "R1"
        assert list(result[side]["by_team"]) == ["UK"]
    with server.client("admin") as client:  # the same change seen by all: more alerts
        everyone = client.post("/v1/thresholds/preview", json={"changes": [
            {"detector": "drift", "rep": "R1", "set": {"lost_probability": 0.95}}]}).json()
    assert everyone["before"]["alerts"] > result["before"]["alerts"]
    assert everyone["removed"]["count"] == result["removed"]["count"]
