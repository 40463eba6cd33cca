"""A service that does not answer ends every command the same way: one line, `error:
cannot reach <service> at <where>: <why>`, exit code 2, no traceback, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sia.cli import app
from sia.settings import get_settings

DOWN_KAFKA = "kafka://127.0.0.1:1"
DOWN_REDIS = "redis://:hunter2@127.0.0.1:1/0"
DOWN_PG = "postgresql+psycopg://sia:hunter2@127.0.0.1:1/sia"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def in_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SIA_DATABASE_URL", "SIA_REDIS_URL", "SIA_KAFKA_BROKER"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "events.jsonl").write_text("")
    get_settings.cache_clear()


def one_error(args: list[str], env: dict[str, str]) -> str:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "hunter2" not in result.output
    return lines[0]


KAFKA = "error: cannot reach Kafka at 127.0.0.1:1: "
REDIS = "error: cannot reach Redis at redis://:***@127.0.0.1:1/0: "
STORE = "error: cannot reach the alert store at postgresql+psycopg://sia:***@127.0.0.1:1/sia: "


@pytest.mark.parametrize(("args", "env", "start"), [
    (["topics"], {"SIA_KAFKA_BROKER": DOWN_KAFKA}, KAFKA),
    (["produce", "events.jsonl"], {"SIA_KAFKA_BROKER": DOWN_KAFKA}, KAFKA),
    (["worker"], {"SIA_KAFKA_BROKER": DOWN_KAFKA}, KAFKA),
    (["worker"], {"SIA_REDIS_URL": DOWN_REDIS}, REDIS),
    (["publish-config"], {"SIA_REDIS_URL": DOWN_REDIS}, REDIS),
    (["publish-config", "--status"], {"SIA_REDIS_URL": DOWN_REDIS}, REDIS),
    (["alerts", "--db", DOWN_PG], {}, STORE),
    (["alerts"], {"SIA_DATABASE_URL": DOWN_PG}, STORE),
    (["deliver", "--db", DOWN_PG], {}, STORE),
    (["replay", "events.jsonl", "--db", DOWN_PG], {}, STORE),
    (["snooze", "add", "customer", "C1", "--who", "a", "--why", "b", "--db", DOWN_PG], {},
     STORE),
    (["snooze", "list", "--db", DOWN_PG], {}, STORE),
    (["mute", "lift", "1", "--db", DOWN_PG], {}, STORE),
    (["keys", "create", "--role", "admin", "--name", "x"], {"SIA_DATABASE_URL": DOWN_PG},
     STORE),
    (["keys", "list"], {"SIA_DATABASE_URL": DOWN_PG}, STORE),
    (["thresholds", "show", "--data-dir", "."], {"SIA_DATABASE_URL": DOWN_PG}, STORE),
    (["routes", "test", "0123", "--db", DOWN_PG], {}, STORE),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_one_line_for_a_service_that_does_not_answer(args: list[str], env: dict[str, str],
                                                      start: str) -> None:
    line = one_error(args, env)
    assert line.startswith(start), line
    assert "refused" in line.lower() or "unable to bootstrap" in line.lower(), line


def test_a_real_worker_process_prints_one_line_and_no_client_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIA_KAFKA_BROKER": DOWN_KAFKA,
           "COLUMNS": "80"}
    env.pop("SIA_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "sia", "worker"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(KAFKA) and done.stderr.count("\n") == 1, done.stderr


def test_serve_whose_database_is_down_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SIA_DATABASE_URL": DOWN_PG}
    done = subprocess.run([sys.executable, "-m", "sia", "serve", "--dev", "--port", "0"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(STORE) and done.stderr.count("\n") == 1, done.stderr
    assert "hunter2" not in done.stderr + done.stdout


@pytest.mark.skipif(not os.environ.get("SIA_TEST_KAFKA_BROKER"),
                    reason="needs the test Kafka broker (SIA_TEST_KAFKA_BROKER)")
def test_a_worker_whose_database_is_down_says_so() -> None:
    env = {"SIA_KAFKA_BROKER": os.environ["SIA_TEST_KAFKA_BROKER"],
           "SIA_KAFKA_APP_ID": f"sia-unreachable-{uuid.uuid4().hex[:8]}",
           "SIA_DATABASE_URL": DOWN_PG}
    assert one_error(["worker"], env).startswith(STORE)
