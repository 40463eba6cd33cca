"""Fixtures of the notifier tests: the local servers, started per test and stopped after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import SMTPServer, WebhookReceiver
from .slack_api import SlackAPI


@pytest.fixture
def slack_api() -> Iterator[SlackAPI]:
    """A fake Slack Web API on 127.0.0.1."""
    with SlackAPI() as api:
        yield api


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that captures mail."""
    with SMTPServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 that verifies SIA's signature."""
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    from .servers import free_port

    return free_port()
