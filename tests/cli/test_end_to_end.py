"""End to end through the `sia` command: demo, replay, rejects, snapshots, imports."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sia.alerts.store import AlertStore
from sia.cli import app
from sia.cli.demo import sample_path
from sia.detectors.config import load_detectors

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Run `sia ARGS`; returns exit code and everything printed."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sample_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample, imported to JSON Lines once for the module."""
    out = tmp_path_factory.mktemp("events") / "sample.jsonl.gz"
    code, text = invoke("import", "online-retail", str(sample_path()), "-o", str(out))
    assert code == 0, text
    return out


def test_demo_shows_alerts_of_every_detector(tmp_path: Path) -> None:
    db = tmp_path / "sia-demo.db"
    code, text = invoke("demo", "--db", str(db), "--top", "3")
    assert code == 0, text
    enabled = [d.name for d in load_detectors()]
    assert len(enabled) == 8
    store = AlertStore(f"sqlite:///{db}")
    counts = {name: store.count(detector=name) for name in enabled}
    rows = store.list(limit=100_000)
    store.close()
    assert all(n > 0 for n in counts.values()), counts
    for name in enabled:
        assert f"{name}:" in text
    kinds = {r.kind for r in rows}
    assert {"overdue", "erosion", "pair"} <= kinds
    overdue = next(r for r in rows if r.kind == "overdue")
    assert "days ago" in overdue.explanation and "a quarter at risk" in overdue.explanation
    assert overdue.evidence and overdue.action


def test_import_writes_valid_events_and_reports_skips(sample_events: Path) -> None:
    with gzip.open(sample_events, "rt") as handle:
        records = [json.loads(line) for line in handle]
    types = {r["type"] for r in records}
    assert {"order", "return", "customer", "product", "rep"} <= types
    ids = [r["event_id"] for r in records]
    assert len(ids) == len(set(ids))


def test_replay_stores_alerts_and_is_idempotent(sample_events: Path, tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    code, text = invoke("replay", str(sample_events), "--db", str(db), "--json",
                        "--rejects", str(tmp_path / "rejects.jsonl"))
    assert code == 0, text
    summary = json.loads(text)
    assert summary["rejects"] == 0
    assert summary["alerts"]["drift"] > 0 and summary["alerts"]["cross_sell"] > 0
    first = summary["stored"]
    assert first == sum(summary["alerts"].values())
    # the same events again: deterministic alert ids, nothing stored twice
    code, text = invoke("replay", str(sample_events), "--db", str(db), "--json")
    assert code == 0, text
    assert json.loads(text)["stored"] == 0
    store = AlertStore(f"sqlite:///{db}")
    assert store.count() == first
    store.close()


def _order(event_id: str, customer: str, when: str, quantity: object = 2) -> str:
    return json.dumps({"type": "order", "event_id": event_id, "occurred_at": when,
                       "customer_id": customer, "order_id": event_id,
                       "lines": [{"product_id": "P1", "quantity": quantity,
                                  "unit_price": 3.5}]})


def test_bad_records_are_reported_kept_and_do_not_stop_the_run(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([
        _order("e1", "c1", "2011-01-01T10:00:00+00:00"),
        "{not json",
        _order("e2", "c1", "2011-01-05T10:00:00"),  # no zone
        _order("e3", "c1", "2011-01-09T10:00:00+00:00", quantity=-4),
        _order("e1", "c1", "2011-01-01T10:00:00+00:00"),  # duplicate id
        _order("e4", "c1", "2011-01-12T10:00:00+00:00"),
    ]) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    code, text = invoke("replay", str(events), "--db", str(tmp_path / "a.db"),
                        "--rejects", str(rejects), "--json")
    assert code == 0, text
    summary = json.loads(text[text.index("{"):])
    assert summary["events"] == 3 and summary["rejects"] == 3 and summary["duplicates"] == 1
    kept = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [k["line"] for k in kept] == [2, 3, 4]
    assert "occurred_at" in kept[1]["reason"] and kept[1]["event_id"] == "e2"
    assert "lines.0.quantity" in kept[2]["reason"]
    assert kept[0]["raw"] == "{not json"
    assert f"{events}:3 (event_id=e2)" in text  # the person sees which record and why


def test_strict_stops_on_the_first_bad_record(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(_order("e1", "c1", "2011-01-01T10:00:00+00:00") + "\n{}\n")
    code, text = invoke("replay", str(events), "--db", str(tmp_path / "a.db"), "--strict",
                        "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert ":2" in text and "type" in text


def test_snapshot_resume_gives_the_same_alerts_as_one_run(
        sample_events: Path, tmp_path: Path) -> None:
    with gzip.open(sample_events, "rt") as handle:
        lines = handle.read().splitlines()
    half = len(lines) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[:half]) + "\n")
    second.write_text("\n".join(lines[half:]) + "\n")
    whole_db, split_db = tmp_path / "whole.db", tmp_path / "split.db"
    state = tmp_path / "state.snap"
    assert invoke("replay", str(sample_events), "--db", str(whole_db))[0] == 0
    assert invoke("replay", str(first), "--db", str(split_db), "--state", str(state))[0] == 0
    assert state.exists()
    assert invoke("replay", str(second), "--db", str(split_db), "--state", str(state))[0] == 0
    whole, split = AlertStore(f"sqlite:///{whole_db}"), AlertStore(f"sqlite:///{split_db}")
    # learned state comes from the snapshot, cooldowns from the store: the same alerts
    whole_ids = {r.alert_id for r in whole.list(limit=100_000)}
    split_ids = {r.alert_id for r in split.list(limit=100_000)}
    whole.close()
    split.close()
    assert whole_ids and whole_ids == split_ids


def test_a_snapshot_from_other_versions_is_refused(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(_order("e1", "c1", "2011-01-01T10:00:00+00:00") + "\n")
    state = tmp_path / "state.snap"
    assert invoke("replay", str(events), "--db", str(tmp_path / "a.db"),
                  "--state", str(state))[0] == 0
    blob = state.read_bytes().replace(b'"river": "', b'"river": "0.0.', 1)
    state.write_bytes(blob)
    code, text = invoke("replay", str(events), "--db", str(tmp_path / "a.db"),
                        "--state", str(state))
    assert code == 2
    assert "river 0.0." in text and "this is river" in text


def test_a_config_error_names_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "detectors.yaml"
    config.write_text("detectors:\n  drift:\n    lost_probabilty: 0.9\n")
    events = tmp_path / "events.jsonl"
    events.write_text(_order("e1", "c1", "2011-01-01T10:00:00+00:00") + "\n")
    code, text = invoke("replay", str(events), "--config", str(config))
    assert code == 2
    assert str(config) in text.replace("\n", "") and "detectors.drift.lost_probabilty" in text


def test_schema_is_json_schema_of_every_event_type() -> None:
    code, text = invoke("schema")
    assert code == 0
    schema = json.loads(text)
    assert set(schema["discriminator"]["mapping"]) == {
        "order", "return", "interaction", "opportunity", "customer", "product", "rep"}


def test_bench_reports_every_key(sample_events: Path) -> None:
    code, text = invoke("bench", "--events", str(sample_events), "--repeat", "1", "--json")
    assert code == 0, text
    result = json.loads(text)
    for key in ("events", "events_per_s", "limit_events_per_s", "ratio",
                "state_bytes_per_customer_median", "state_bytes_per_customer_p99"):
        assert result[key] > 0, key
    assert result["limit_events_per_s"] >= result["events_per_s"] * 0.8


def test_evaluate_reports_detectors_against_baselines(sample_events: Path) -> None:
    code, text = invoke("evaluate", str(sample_events), "--horizon", "90d", "--json")
    assert code == 0, text
    report = json.loads(text)["detectors"]
    for name in ("drift", "cross_sell"):
        r = report[name]
        for key in ("alerts", "precision", "recall", "median_lead_days",
                    "alerts_per_1k_customers_per_week"):
            assert key in r
        assert r["alerts"] > 0 and 0 <= r["precision"] <= 1
        assert set(r["baseline"]) >= {"name", "alerts", "precision", "recall"}
    assert report["cross_sell"]["baseline"]["alerts"] == report["cross_sell"]["alerts"]


def test_demo_delivers_the_last_week_to_the_console_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = invoke("demo", "--db", str(tmp_path / "sia-demo.db"), "--top", "1")
    assert code == 0, text
    assert "Delivered the last week of each dataset" in text.replace("\n", " ")
    delivered = (tmp_path / "sia-demo-deliveries.txt").read_text()
    assert "SIA alert for" in delivered or "SIA digest for" in delivered
    assert "Suggested action" in delivered


def test_routes_test_shows_who_gets_an_alert(sample_events: Path, tmp_path: Path) -> None:
    db, state = tmp_path / "a.db", tmp_path / "s.snap"
    assert invoke("replay", str(sample_events), "--db", str(db), "--state", str(state))[0] == 0
    code, text = invoke("alerts", "--db", str(db), "--json", "--limit", "1")
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(text)
    code, text = invoke("routes", "test", str(alert_file), "--state", str(state))
    assert code == 0, text
    assert "owner rep of customer" in text and "matched root" in text


def test_deliver_waits_for_unconfigured_channels_and_says_which(
        sample_events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.settings import get_settings

    db, state = tmp_path / "a.db", tmp_path / "s.snap"
    assert invoke("replay", str(sample_events), "--db", str(db), "--state", str(state))[0] == 0
    # the sample is from 2011: delivering it now reaches people only if told to, and
    # without a group wait or quiet hours its messages are due at once
    monkeypatch.setenv("SIA_DELIVERY_MAX_AGE_DAYS", str(365 * 100))
    routes = tmp_path / "routing.yaml"
    routes.write_text("receivers:\n  owner_rep: {kind: owner_rep}\n"
                      "team_channels: {default: \"#sales\"}\n"
                      "route: {receivers: [owner_rep], group_wait_minutes: 0, "
                      "quiet_hours: null, digest_below: low}\n")
    get_settings.cache_clear()
    try:
        code, text = invoke("deliver", "--db", str(db), "--state", str(state),
                            "--routes", str(routes))
    finally:
        get_settings.cache_clear()
    assert code == 0, text
    assert "dead-lettered 0" in text
    assert "wait for the email notifier" in text and "SIA_SMTP_HOST" in text


def test_deliver_after_a_replay_of_history_keeps_it_as_history(
        sample_events: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert invoke("replay", str(sample_events), "--db", str(db))[0] == 0
    code, text = invoke("deliver", "--db", str(db))
    assert code == 0, text
    assert "sent 0" in text and "wait for" not in text  # nothing routed to anyone
    store = AlertStore(f"sqlite:///{db}")
    statuses = {r.status for r in store.list(limit=100_000)}
    store.close()
    assert statuses == {"history"}


def test_bench_measures_delivery_latency(sample_events: Path) -> None:
    code, text = invoke("bench", "--events", str(sample_events), "--repeat", "1", "--delivery",
                        "--rate", "400", "--seconds", "3", "--json")
    assert code == 0, text
    result = json.loads(text)
    assert result["delivery_messages"] > 0
    assert 0 < result["delivery_latency_ms_p50"] <= result["delivery_latency_ms_p99"]


def test_alerts_lists_with_the_api_s_filters_and_refuses_unknown_detectors(
        sample_events: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert invoke("replay", str(sample_events), "--db", str(db))[0] == 0
    code, text = invoke("alerts", "--db", str(db), "--json", "--limit", "1000")
    everything = json.loads(text)
    rep = next(a["rep_id"] for a in everything if a["rep_id"])
    code, text = invoke("alerts", "--db", str(db), "--json", "--rep", rep, "--limit", "1000")
    mine = json.loads(text)
    assert code == 0 and mine and {a["rep_id"] for a in mine} == {rep}
    assert len(mine) == sum(1 for a in everything if a["rep_id"] == rep)
    code, text = invoke("alerts", "--db", str(db), "--json", "--since", "2011-11-01")
    assert code == 0 and all(a["occurred_at"] >= "2011-11-01" for a in json.loads(text))
    code, text = invoke("alerts", "--db", str(db), "--detector", "drfit")
    assert code == 2 and "unknown detector 'drfit'" in text


def test_a_second_replay_of_the_same_file_learns_and_stores_nothing_again(
        sample_events: Path, tmp_path: Path) -> None:
    # once means once across runs: the ids of a whole year (and more) are remembered with
    # the state, so the same file again is all duplicates (not late events, not new
    # alerts), and an id that comes back with other content is refused as a conflict
    db, state, rejects = tmp_path / "a.db", tmp_path / "state.snap", tmp_path / "rejects.jsonl"
    args = ("--db", str(db), "--state", str(state), "--rejects", str(rejects), "--json")
    code, text = invoke("replay", str(sample_events), *args)
    assert code == 0, text
    first = json.loads(text[text.index("{"):])
    assert first["stored"] > 0 and first["duplicates"] == 0
    code, text = invoke("replay", str(sample_events), *args)
    assert code == 0, text
    again = json.loads(text[text.index("{"):])
    assert (again["events"], again["duplicates"]) == (first["events"], first["events"])
    assert again["rejects"] == 0 and again["stored"] == 0 and not again["alerts"]
    assert not rejects.exists()

    with gzip.open(sample_events, "rt") as handle:
        order = next(json.loads(line) for line in handle if '"type": "order"' in line
                     or '"type":"order"' in line)
    order["lines"][0]["quantity"] += 1
    changed = tmp_path / "changed.jsonl"
    changed.write_text(json.dumps(order) + "\n")
    code, text = invoke("replay", str(changed), *args)
    assert code == 0, text
    assert f"rejected {changed} (event_id={order['event_id']}): conflict" in " ".join(
        text.split())
    kept = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["event_id"], r["reason"].split(":")[0]) for r in kept] == [
        (order["event_id"], "conflict")]
    assert json.loads(kept[0]["raw"])["lines"][0]["quantity"] == order["lines"][0]["quantity"]
