"""Fixtures of the hardening tests: the same real local servers the other tests use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notifiers.servers import SMTPServer, WebhookReceiver  # type: ignore[import-not-found]
from notifiers.slack_api import SlackAPI  # type: ignore[import-not-found]

from sia.alerts.store import AlertStore


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver that verifies SIA's signature."""
    with WebhookReceiver() as r:
        yield r


@pytest.fixture()
def slack_api() -> Iterator[SlackAPI]:
    """The local Slack Web API stand-in."""
    with SlackAPI() as api:
        yield api


@pytest.fixture()
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that captures mail."""
    with SMTPServer() as server:
        yield server


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[AlertStore]:
    """An empty SQLite alert store."""
    s = AlertStore(f"sqlite:///{tmp_path / 'sia.db'}")
    yield s
    s.close()
