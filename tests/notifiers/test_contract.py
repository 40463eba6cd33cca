"""Contract tests generated for every notifier the registry builds (see checks.py)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator

import pytest

from sia.notifiers.registry import build_notifier, channels

from . import checks
from .servers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    Received,
    SMTPServer,
    WebhookReceiver,
)
from .slack_api import CHANNEL, TOKEN, SlackAPI

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
API_KEY = "webhook-api-key-for-tests"


def slack_harness() -> Iterator[checks.Harness]:
    with SlackAPI() as api:
        notifier = build_notifier("slack", {"token": TOKEN, "base_url": api.base_url,
                                            "timeout": 2})
        yield checks.Harness(
            "slack", notifier, CHANNEL,
            deliveries=lambda: len(api.posted()),
            last_subject=lambda: str(api.posted()[-1]["blocks"][0]["text"]["text"]),
            break_next=lambda: api.server_error_next(503), secrets=[TOKEN])


def email_harness() -> Iterator[checks.Harness]:
    with SMTPServer(auth=True, tls="implicit") as server:  # a password goes over TLS only
        notifier = build_notifier("email", {
            "host": "127.0.0.1", "port": server.port, "sender": "sia@alerts.example.test",
            "username": SMTP_USER, "password": SMTP_PASSWORD, "timeout": 2, "ssl": True,
            "cafile": server.cafile})
        yield checks.Harness(
            "email", notifier, "dana.reyes@example.test",
            deliveries=lambda: len(server.messages),
            last_subject=lambda: str(server.messages[-1]["Subject"]),
            break_next=lambda: server.handler.data_replies.append("451 4.3.0 try later"),
            secrets=[SMTP_PASSWORD])


def webhook_harness() -> Iterator[checks.Harness]:
    with WebhookReceiver() as receiver:
        notifier = build_notifier("webhook", {"secret": WEBHOOK_SECRET.decode(),
                                              "headers": {"X-Api-Key": API_KEY}})
        def accepted() -> list[Received]:
            return [r for r in receiver.received if r.verified and r.status == 200]

        yield checks.Harness(
            "webhook", notifier, receiver.url,
            deliveries=lambda: len(accepted()),
            last_subject=lambda: str(accepted()[-1].json()["subject"]),
            break_next=lambda: receiver.reply_next(503),
            secrets=[WEBHOOK_SECRET.decode(), API_KEY])
        notifier.close()


def console_harness() -> Iterator[checks.Harness]:
    out = io.StringIO()
    header = re.compile(r"^SIA (alert|group|digest|notice) for ", re.MULTILINE)

    def last_subject() -> str:
        *_, last = header.finditer(out.getvalue())
        return out.getvalue()[last.end():].splitlines()[1]

    yield checks.Harness("console", build_notifier("console", {"stream": out}), "-",
                         deliveries=lambda: len(header.findall(out.getvalue())),
                         last_subject=last_subject)


HARNESSES: dict[str, Callable[[], Iterator[checks.Harness]]] = {
    "slack": slack_harness, "email": email_harness, "webhook": webhook_harness,
    "console": console_harness}


def test_every_registered_channel_has_a_harness() -> None:
    assert sorted(HARNESSES) == channels()


@pytest.fixture(params=channels())
def harness(request: pytest.FixtureRequest) -> Iterator[checks.Harness]:
    yield from HARNESSES[request.param]()


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(harness: checks.Harness, check: Callable[[checks.Harness], None]) -> None:
    check(harness)
