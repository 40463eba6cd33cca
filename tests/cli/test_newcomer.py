"""What a newcomer meets on the command line (issue 20): one way to name the store,
readers that never create one, `sia alerts` and `sia detectors` as the API answers them,
snoozes and mutes that can be listed and lifted."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from sia.alerts.store import AlertStore
from sia.cli import app
from sia.detectors.base import registered
from sia.findings import Finding, Severity
from sia.policy import Alert
from sia.settings import get_settings

NOW = datetime.now(UTC).replace(microsecond=0)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a failure, never an answer
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """No SIA_DATABASE_URL from the caller's environment, in an empty folder."""
    monkeypatch.delenv("SIA_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def finding(n: int, *, detector: str = "drift", customer: str = "C1",
            severity: Severity = Severity.HIGH, days_ago: float = 1.0) -> Finding:
    return Finding(detector=detector, kind="overdue", subject_kind="customer",
                   subject_id=customer, occurred_at=NOW - timedelta(days=days_ago),
                   score=0.9, severity=severity, title=f"Customer {customer} is overdue {n}",
                   explanation="no order for a long time", action="call them",
                   dedup_key=f"{detector}:overdue:{customer}:{n}")


def stored(path: Path) -> Path:
    """A store with five alerts: two reps and teams, three detectors, a month apart."""
    findings = [finding(1), finding(2, customer="C2", severity=Severity.LOW, days_ago=3),
                finding(3, detector="cross_sell", customer="C3", days_ago=10),
                finding(4, detector="margin", customer="C1", severity=Severity.MEDIUM,
                        days_ago=40),
                finding(5, customer="C4", days_ago=0.25)]
    owners = {"C1": ("r1", "UK"), "C2": ("r2", "DE"), "C3": ("r1", "UK"), "C4": ("r2", "DE")}
    store = AlertStore(f"sqlite:///{path}")
    store.add([Alert(Alert.id_for(f), f) for f in findings],
              owner=lambda a: owners[a.finding.subject_id])
    store.close()
    return path


# one way to name the store, and readers that never create one

def test_alerts_in_an_empty_folder_creates_nothing_and_says_where_it_looked(
        tmp_path: Path) -> None:
    code, text = invoke("alerts")
    assert code == 2
    assert text.strip() == ("error: no alert store at sqlite:///sia.db (use --db or "
                            "SIA_DATABASE_URL)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["alerts", "--db", "elsewhere.db"], ["snooze", "list", "--db", "elsewhere.db"],
    ["mute", "lift", "1", "--db", "elsewhere.db"], ["deliver", "--db", "elsewhere.db"]])
def test_every_reader_creates_no_file(tmp_path: Path, args: list[str]) -> None:
    code, text = invoke(*args)
    assert code == 2
    assert f"no alert store at sqlite:///{tmp_path / 'elsewhere.db'}" in " ".join(text.split())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["keys", "list"], ["keys", "revoke", "abc"], ["thresholds", "show"],
    ["thresholds", "history"], ["thresholds", "preview", "--set", "drift.min_orders=2"],
    ["keys", "list", "--data-dir", "other"], ["thresholds", "show", "--data-dir", "other"]])
def test_data_folder_readers_make_no_folder(tmp_path: Path, args: list[str]) -> None:
    code, text = invoke(*args)
    assert code == 2
    folder = args[args.index("--data-dir") + 1] if "--data-dir" in args else "sia-data"
    assert f"data folder {folder}" in " ".join(text.split())
    assert list(tmp_path.iterdir()) == []


def test_a_database_without_sia_s_tables_is_not_given_them_by_a_reader() -> None:
    from sia.alerts.store import NoStore

    with pytest.raises(NoStore, match="holds no SIA tables"):
        AlertStore("sqlite://", create=False)  # in memory: never migrated


@pytest.mark.skipif(not os.environ.get("SIA_TEST_DATABASE_URL"),
                    reason="needs the test PostgreSQL (SIA_TEST_DATABASE_URL)")
def test_readers_read_a_postgresql_store() -> None:
    url = os.environ["SIA_TEST_DATABASE_URL"]
    AlertStore(url).close()  # at head, as the service leaves it
    code, text = invoke("alerts", "--json", "--limit", "1", env={"SIA_DATABASE_URL": url})
    assert code == 0, text
    assert isinstance(json.loads(text), list)
    code, text = invoke("snooze", "list", "--db", url, "--json")
    assert code == 0 and isinstance(json.loads(text), list)


def test_sia_database_url_names_the_store_when_db_is_not_given(tmp_path: Path) -> None:
    db = stored(tmp_path / "from-env.db")
    code, text = invoke("alerts", "--json", env={"SIA_DATABASE_URL": f"sqlite:///{db}"})
    assert code == 0, text
    assert len(json.loads(text)) == 5
    code, text = invoke("snooze", "list", env={"SIA_DATABASE_URL": f"sqlite:///{db}"})
    assert code == 0 and f"no snoozes in force in sqlite:///{db}" in " ".join(text.split())


def test_a_database_url_s_password_is_never_printed() -> None:
    code, text = invoke("alerts", "--db", "postgresql+psycopg://sia:hunter2@127.0.0.1:1/sia")
    assert code == 2 and "hunter2" not in text
    assert "postgresql+psycopg://sia:***@127.0.0.1:1/sia" in text


# sia alerts: the API's query, as a table

def test_alerts_table_shows_ids_and_dedup_keys(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    code, text = invoke("alerts", "--db", str(db))
    assert code == 0, text
    store = AlertStore(f"sqlite:///{db}")
    rows = store.list(limit=10)
    store.close()
    for row in rows:
        line = next(line for line in text.splitlines() if row.alert_id in line)
        assert row.dedup_key in line and row.title in line and row.subject_id in line
    assert "5 alerts shown, newest first (3 drift, 1 cross_sell, 1 margin)" in text
    assert "alert id" in text and "dedup key" in text


def test_alerts_filters_are_the_api_s(tmp_path: Path) -> None:
    from sia.service.alerts import AlertFilter, list_alerts

    db = stored(tmp_path / "a.db")
    store = AlertStore(f"sqlite:///{db}")

    def api(**where: Any) -> list[str]:
        return [a["alert_id"] for a in list_alerts(store, AlertFilter(**where)).items]

    def cli(*args: str) -> list[str]:
        code, text = invoke("alerts", "--db", str(db), "--json", *args)
        assert code == 0, text
        return [a["alert_id"] for a in json.loads(text)]

    try:
        assert cli("--team", "UK") == api(team="UK") and len(api(team="UK")) == 3
        assert cli("--rep", "r2") == api(rep_id="r2") and len(api(rep_id="r2")) == 2
        assert cli("--severity", "low") == api(severity="low") and len(api(severity="low")) == 1
        assert cli("--detector", "margin") == api(detector="margin")
        assert cli("--customer", "C1") == api(customer="C1") and len(api(customer="C1")) == 2
        assert cli("--status", "pending") == api(status="pending")
        assert cli("--since", "7d") == api(since=NOW - timedelta(days=7))
        assert len(cli("--since", "7d")) == 3
        assert len(cli("--since", "12h")) == 1
        day = (NOW - timedelta(days=5)).date().isoformat()
        assert cli("--since", day) == api(since=datetime.fromisoformat(day).replace(
            tzinfo=UTC))
        stamp = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
        assert len(cli("--since", stamp)) == 2
        assert cli("--team", "UK", "--detector", "drift") == api(team="UK", detector="drift")
        assert cli("--limit", "2") == api()[:2]
    finally:
        store.close()


def test_alerts_refuses_unknown_detectors_naming_the_known_ones(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    code, text = invoke("alerts", "--db", str(db), "--detector", "drfit")
    assert code == 2
    assert " ".join(text.split()) == (f"error: unknown detector 'drfit'; known: "
                                      f"{', '.join(registered())}")
    code, text = invoke("alerts", "--db", str(db), "--since", "last week")
    assert code == 2 and "a time ago (7d, 12h, 2w)" in " ".join(text.split())
    code, text = invoke("alerts", "--db", str(db), "--severity", "urgent")
    assert code == 2 and "use low, medium or high" in text


def test_alerts_that_match_nothing_say_so_and_where(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    code, text = invoke("alerts", "--db", str(db), "--team", "FR")
    assert code == 0
    assert " ".join(text.split()) == f"no alerts match in sqlite:///{db}"


# sia detectors: effective values with their source, as GET /v1/thresholds

CONFIG = """
enabled: [drift, margin]
detectors:
  drift: {lost_probability: 0.85}
segments:
  Retail:
    drift: {lost_probability: 0.7}
teams:
  UK:
    drift: {lost_probability: 0.95}
"""


def test_detectors_show_each_value_s_source(tmp_path: Path) -> None:
    from sia.service.thresholds import config_from_files
    from sia.thresholds.effective import effective

    config = tmp_path / "detectors.yaml"
    config.write_text(CONFIG)

    def value_line(*args: str) -> str:
        code, text = invoke("detectors", "--config", str(config), *args)
        assert code == 0, text
        return next(" ".join(line.split()) for line in text.splitlines()
                    if "lost_probability =" in line)

    assert value_line().startswith("lost_probability = 0.85 (") and \
        value_line().endswith("[configured]")
    assert value_line("--segment", "Retail").startswith("lost_probability = 0.7 ")
    assert value_line("--segment", "Retail").endswith("[segment Retail]")
    assert value_line("--team", "UK", "--segment", "Retail").endswith("[team UK]")
    code, text = invoke("detectors", "--config", str(config), "--team", "UK", "--json")
    assert code == 0
    assert json.loads(text) == json.loads(json.dumps(effective(
        config_from_files(config, None), team="UK"), default=str))
    code, text = invoke("detectors", "--config", str(config))
    assert code == 0
    assert "min_orders = 1 (" in " ".join(text.split())  # a detector default
    assert "[default]" in text and "cross_sell" not in text  # only the enabled ones


def test_detectors_warn_about_a_team_or_segment_without_overrides(tmp_path: Path) -> None:
    config = tmp_path / "detectors.yaml"
    config.write_text(CONFIG)
    code, text = invoke("detectors", "--config", str(config), "--team", "FR",
                        "--segment", "Wholesale")
    assert code == 0
    flat = " ".join(text.split())
    assert "warning: no overrides for team 'FR' in the configuration (known: UK)" in flat
    assert "warning: no overrides for segment 'Wholesale' in the configuration (known: " \
           "Retail)" in flat
    assert "lost_probability = 0.85" in flat


def test_detectors_refuse_a_broken_configuration(tmp_path: Path) -> None:
    config = tmp_path / "detectors.yaml"
    config.write_text("detectors:\n  drift: {lost_probabilty: 0.9}\n")
    code, text = invoke("detectors", "--config", str(config))
    assert code == 2 and "lost_probabilty" in text


# snoozes and mutes: add, list, lift

def test_snooze_add_list_lift(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    code, text = invoke("snooze", "add", "customer", "C1", "--who", "ana", "--why",
                        "on holiday", "--days", "3", "--db", str(db))
    assert code == 0, text
    assert text.startswith("snooze 1: customer C1 until ")
    assert "warning" not in text
    # the invocation from before `add` existed
    code, text = invoke("snooze", "detector", "margin", "--who", "bo", "--why", "noisy",
                        "--rep", "r1", "--db", str(db))
    assert code == 0 and text.startswith("snooze 2: detector margin for rep r1 until "), text
    code, text = invoke("mute", "--who", "cy", "--why", "known", "--db", str(db),
                        "alert", "drift:overdue:C2:2")  # old style, options first
    assert code == 0 and text.startswith("mute 3: alert drift:overdue:C2:2 until "), text

    code, text = invoke("snooze", "list", "--db", str(db), "--json")
    listed = json.loads(text)
    assert [(h["id"], h["scope"], h["target"], h["rep_id"]) for h in listed] == [
        (1, "customer", "C1", None), (2, "detector", "margin", "r1")]
    assert all(h["in_force"] for h in listed)
    code, text = invoke("snooze", "list", "--rep", "r2", "--db", str(db), "--json")
    assert [h["id"] for h in json.loads(text)] == [1]  # for everyone, not r1's
    code, text = invoke("mute", "list", "--db", str(db))
    assert code == 0 and "alert drift:overdue:C2:2" in text and "cy: known" in text
    assert "margin" not in text  # snoozes are not mutes

    code, text = invoke("snooze", "lift", "1", "--db", str(db))
    assert code == 0 and text.strip() == "snooze 1 lifted: customer C1"
    code, text = invoke("snooze", "list", "--db", str(db), "--json")
    assert [h["id"] for h in json.loads(text)] == [2]
    code, text = invoke("snooze", "list", "--all", "--db", str(db), "--json")
    assert [(h["id"], h["in_force"]) for h in json.loads(text)] == [(1, False), (2, True)]
    code, text = invoke("snooze", "lift", "1", "--db", str(db))
    assert code == 2 and "snooze 1 ended already" in text
    code, text = invoke("snooze", "lift", "3", "--db", str(db))  # a mute, not a snooze
    assert code == 2 and "no snooze 3 in " in text
    code, text = invoke("mute", "lift", "3", "--db", str(db))
    assert code == 0 and text.strip() == "mute 3 lifted: alert drift:overdue:C2:2"


def test_unknown_targets_are_warned_and_unknown_detectors_refused(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    code, text = invoke("snooze", "add", "customer", "C99", "--who", "a", "--why", "b",
                        "--db", str(db))
    assert code == 0
    flat = " ".join(text.split())
    assert f"warning: no stored alert is about customer 'C99' in sqlite:///{db}; " \
           "snoozed anyway" in flat
    code, text = invoke("mute", "add", "alert", "drift:nothing", "--who", "a", "--why", "b",
                        "--db", str(db))
    assert code == 0 and "no stored alert is about alert 'drift:nothing'" in \
        " ".join(text.split())
    code, text = invoke("mute", "add", "detector", "drfit", "--who", "a", "--why", "b",
                        "--db", str(db))
    assert code == 2 and "unknown detector 'drfit'; known: " in text
    code, text = invoke("mute", "add", "team", "UK", "--who", "a", "--why", "b",
                        "--db", str(db))
    assert code == 2  # not a scope: neither a hold nor taken for the old invocation
    code, text = invoke("mute", "list", "--db", str(db), "--json")
    assert [h["target"] for h in json.loads(text)] == ["drift:nothing"]


def test_lifting_a_snooze_makes_what_it_held_due_now(tmp_path: Path) -> None:
    from sia.delivery.tables import AlertRoute
    from sia.service.holds import hold, lift

    db = stored(tmp_path / "a.db")
    store = AlertStore(f"sqlite:///{db}")
    try:
        held = hold(store, kind="snooze", scope="customer", target="C1", who="a", why="b",
                    days=7, now=NOW)
        alert_id = store.list(subject_id="C1", limit=1)[0].alert_id
        with Session(store.engine) as session, session.begin():
            session.add(AlertRoute(alert_id=alert_id, channel="slack", address="U1",
                                   disposition="snoozed", due_at=held.until, routed_at=NOW))
        later = NOW + timedelta(hours=1)
        lifted = lift(store, kind="snooze", hold_id=held.hold_id, now=later)
        assert lifted.until == later
        with Session(store.engine) as session:
            route = session.scalars(select(AlertRoute)).one()
        assert route.due_at == later and route.disposition == "snoozed"
    finally:
        store.close()


# sia routes test: by id, from the store

def test_routes_test_reads_an_alert_by_id_from_the_store(tmp_path: Path) -> None:
    db = stored(tmp_path / "a.db")
    store = AlertStore(f"sqlite:///{db}")
    alert_id = store.list(subject_id="C2", limit=1)[0].alert_id
    store.close()
    code, text = invoke("routes", "test", alert_id, "--db", str(db))
    assert code == 0, text
    assert text.startswith(f"alert {alert_id}: drift/overdue, low, about customer C2")
    assert "matched root" in text
    code, text = invoke("routes", "test", "0" * 32, "--db", str(db))
    assert code == 2
    assert " ".join(text.split()) == (f"error: {'0' * 32}: no such file, and no alert with "
                                      f"this id in sqlite:///{db}")
    code, text = invoke("routes", "test", alert_id, "--db", "missing.db")
    assert code == 2 and "no alert store at" in text
    assert not (tmp_path / "missing.db").exists()


def test_a_narrow_terminal_gets_one_block_per_alert_with_whole_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import sia.cli.alerts as alerts_cli

    db = stored(tmp_path / "a.db")
    screen = io.StringIO()
    monkeypatch.setattr(alerts_cli, "stdout_is_terminal", lambda: True)
    monkeypatch.setattr(alerts_cli, "console", Console(file=screen, width=80))
    code, _ = invoke("alerts", "--db", str(db), "--detector", "drift")
    assert code == 0
    text = screen.getvalue()
    store = AlertStore(f"sqlite:///{db}")
    rows = store.list(detector="drift", limit=10)
    store.close()
    for row in rows:
        assert f"  id {row.alert_id}  dedup key {row.dedup_key}\n" in text
    assert "about customer C2, rep r2 (DE)" in text
    assert "3 alerts shown" in text
