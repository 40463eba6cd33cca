"""Real servers for the API tests: uvicorn on a free port, in a thread (a runtime the test
can look into) or as a `sia serve` process (to kill it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sia.api.app import create_app, server_config
from sia.service.runtime import Runtime, open_runtime
from sia.settings import Settings

FEEDBACK_SECRET = "feedback-secret-for-the-api-tests"
SIGNING_SECRET = "slack-signing-secret-for-the-api-tests"


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_settings(**overrides: Any) -> Settings:
    """Settings of a test server: event-time clock, known secrets, nothing delivered."""
    values: dict[str, Any] = {"feedback_secret": FEEDBACK_SECRET,
                              "slack_signing_secret": SIGNING_SECRET, "serve_clock": "event",
                              "serve_snapshot_seconds": 3600.0}
    values.update(overrides)
    return Settings(**values)


@dataclass
class Server:
    """A running server and a key for each role."""

    url: str
    runtime: Runtime
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        """A client that sends the key of `who` (crm, admin, manager, manager_uk, rep)."""
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def wait_learned(self, timeout: float = 60.0) -> None:
        """Until the engine has learned everything accepted so far, alerts stored."""
        engine = self.runtime.engine
        assert engine is not None
        newest = self.runtime.journal.newest_seq()
        assert engine.wait_for(newest, timeout), f"engine still {engine.lag()} events behind"

    def status(self) -> dict[str, Any]:
        """The engine process's status."""
        engine = self.runtime.engine
        assert engine is not None
        return engine.status()

    @contextmanager
    def engine_paused(self) -> Iterator[None]:
        """The engine process stopped (SIGSTOP) meanwhile: it learns nothing, ticks
        nothing, and the journal's backlog grows."""
        engine = self.runtime.engine
        assert engine is not None and engine.pid is not None
        os.kill(engine.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(engine.pid, signal.SIGCONT)


def add_keys(runtime: Runtime) -> dict[str, str]:
    """One key per role (a team-scoped manager and a rep bound to rep R1 too)."""
    keys = {}
    for who, role, extra in (("crm", "crm", {}), ("admin", "admin", {}),
                             ("manager", "manager", {}),
                             ("manager_uk", "manager", {"team": "UK"}),
                             ("rep", "rep", {"rep_id": "R1"})):
        keys[who] = runtime.keys.create(role=role, name=f"test {who}", **extra)[0]
    return keys


@contextmanager
def serving(data_dir: Path, settings: Settings | None = None, *, dev: bool = False,
            routes: Path | None = None,
            receiver: Callable[[Any], Any] | None = None) -> Iterator[Server]:
    """A real uvicorn serving a runtime opened on `data_dir`, in a thread."""
    settings = settings or server_settings()
    runtime = open_runtime(settings, data_dir, routes=routes, dev=dev, receiver=receiver)
    port = free_port()
    server = uvicorn.Server(server_config(create_app(runtime), settings, host="127.0.0.1",
                                          port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", runtime, add_keys(runtime))
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server on an empty data folder."""
    with serving(tmp_path / "data") as s:
        yield s


@dataclass
class Process:
    """A `sia serve` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> bool:
        """Send `sig`, wait for the process to end; True when it shut down cleanly
        (uvicorn raises the signal again after its graceful shutdown, so the exit status
        is the signal's)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        return code in (0, -sig) and "state saved" in self.log.read_text()


def start_process(data_dir: Path, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 60) -> Process:
    """`sia serve --data-dir DATA ARGS` on a free port, once it answers /healthz."""
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    full_env = {**os.environ, "SIA_FEEDBACK_SECRET": FEEDBACK_SECRET,
                "SIA_SERVE_CLOCK": "event", "COLUMNS": "200", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from sia.cli import app; app()", "serve", "--data-dir",
             str(data_dir), "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Process(proc, url, log)
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"sia serve did not start:\n{log.read_text()}")
        time.sleep(0.1)


def create_key(data_dir: Path, role: str, *extra: str) -> str:
    """`sia keys create` in a process of its own (as a user would, server running or not)."""
    result = subprocess.run(
        [sys.executable, "-c", "from sia.cli import app; app()", "keys", "create", "--role",
         role, "--name", f"test {role}", "--data-dir", str(data_dir), *extra],
        capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]
