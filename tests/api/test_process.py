"""`sia serve` as a process: killed with -9 and restarted, every accepted event is learned
exactly once; SIGTERM lets requests in flight finish, then saves the state; a second
server on the same data folder is refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sia.cli.demo import DATASETS, load
from sia.events.models import Event

from .conftest import Process, create_key, start_process
from .test_live import one_engine


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


def batches(events: list[Event], size: int = 500) -> list[list[dict[str, Any]]]:
    data = [e.model_dump(mode="json") for e in events]
    return [data[i:i + size] for i in range(0, len(data), size)]


def post(proc: Process, key: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx.post(f"{proc.url}/v1/events", json={"events": batch}, timeout=60,
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status(proc: Process, key: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{proc.url}/v1/status", timeout=30, headers={
        "Authorization": f"Bearer {key}"}).json()
    return body


def caught_up(proc: Process, key: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        now = status(proc, key)
        if now["lag"] == 0 and now["engine"]["journal_seq"] == now["journal_events"]:
            time.sleep(0.3)  # the batch's alerts are stored right after the cursor moves
            return status(proc, key)
        assert time.monotonic() < deadline, now
        time.sleep(0.2)


def alert_ids(proc: Process, key: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{proc.url}/v1/alerts", params=params, timeout=60,
                         headers={"Authorization": f"Bearer {key}"}).json()
        ids |= {a["alert_id"] for a in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def test_kill_9_right_after_answers_loses_nothing_and_learns_nothing_twice(
        tmp_path: Path, retail: list[Event]) -> None:
    data = tmp_path / "data"
    env = {"SIA_SERVE_SNAPSHOT_SECONDS": "0.5"}
    parts = batches(retail)
    crm, admin = create_key(data, "crm"), create_key(data, "admin")
    accepted = 0
    proc = start_process(data, env=env)
    cuts = (len(parts) // 3, 2 * len(parts) // 3)
    try:
        for i, batch in enumerate(parts):
            if i == cuts[0]:  # a periodic snapshot, from a forked copy, has been saved
                deadline = time.monotonic() + 60
                while status(proc, admin)["engine"]["snapshots"] < 1:
                    assert time.monotonic() < deadline, "no background snapshot"
                    time.sleep(0.1)
            accepted += post(proc, crm, batch)["accepted"]
            if i in cuts:  # the answer is in: the server dies before it can do more
                engine_pid = status(proc, admin)["engine"]["pid"]
                proc.proc.kill()
                proc.proc.wait(30)
                gone(engine_pid)  # its engine process dies with it: no orphan learns on
                proc = start_process(data, env=env)
                repeat = post(proc, crm, batch)  # a sender retrying after the crash
                assert {r["status"] for r in repeat["results"]} == {"duplicate"}
        final = caught_up(proc, admin)
        assert accepted == len(retail) == final["journal_events"]
        assert final["engine"]["learned"] == len(retail)
        assert final["engine"]["duplicates"] == 0
        assert alert_ids(proc, admin) == {a.alert_id for a in one_engine(retail)}
        assert proc.stop()
    finally:
        proc.stop()


def gone(pid: int, timeout: float = 30) -> None:
    """Wait until the process with this pid has ended (a zombie has ended)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (FileNotFoundError, IndexError):
            return
        if state in "ZX":
            return
        assert time.monotonic() < deadline, f"process {pid} outlived its server"
        time.sleep(0.05)


def slow_body(batch: list[dict[str, Any]], started: threading.Event) -> Iterator[bytes]:
    import json

    text = json.dumps({"events": batch}).encode()
    yield text[:100]
    started.set()
    time.sleep(1.5)  # SIGTERM arrives while this request is in flight
    yield text[100:]


def test_sigterm_finishes_requests_in_flight_then_saves_the_state(
        tmp_path: Path, retail: list[Event]) -> None:
    data = tmp_path / "data"
    crm, admin = create_key(data, "crm"), create_key(data, "admin")
    proc = start_process(data)
    first, second = batches(retail, 1000)[:2]
    post(proc, crm, first)
    started = threading.Event()
    answer: dict[str, Any] = {}

    def in_flight() -> None:
        response = httpx.post(f"{proc.url}/v1/events", timeout=60,
                              content=slow_body(second, started),
                              headers={"Authorization": f"Bearer {crm}",
                                       "Content-Type": "application/json"})
        answer.update(status=response.status_code, body=response.json())

    sender = threading.Thread(target=in_flight)
    sender.start()
    assert started.wait(30)
    time.sleep(0.3)
    assert proc.stop(signal.SIGTERM)
    sender.join(60)
    assert answer["status"] == 200 and answer["body"]["accepted"] == len(second)
    log = proc.log.read_text()
    assert "state saved" in log
    assert (data / "state" / "engine.snap").exists()
    proc = start_process(data)
    try:
        final = caught_up(proc, admin)
        assert final["engine"]["learned"] == len(first) + len(second)
        assert "resumed from" in proc.log.read_text()
    finally:
        proc.stop()


def test_a_second_server_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start_process(data)
    try:
        second = subprocess.run(
            [sys.executable, "-c", "from sia.cli import app; app()", "serve", "--data-dir",
             str(data), "--port", "0"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"pid {proc.proc.pid}" in second.stderr and "in use" in second.stderr
    finally:
        proc.stop()
