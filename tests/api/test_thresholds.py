"""Managers tune thresholds on a real server: see each value and where it comes from,
change it with a reason against the version they saw, see the history, roll back; the
running engine takes each version without relearning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Server, serving


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
    with server.client("rep") as client:
        assert client.get("/v1/thresholds").status_code == 403


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
