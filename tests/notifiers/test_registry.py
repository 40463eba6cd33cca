"""build_notifier: from a plain mapping to a ready notifier, with clear errors."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from sia.notifiers.console import ConsoleNotifier
from sia.notifiers.email import EmailNotifier
from sia.notifiers.registry import NotifierSettingsError, build_notifier, channels
from sia.notifiers.slack import SlackNotifier
from sia.notifiers.webhook import WebhookNotifier


class FakeSecret:
    """Behaves like pydantic's SecretStr: hides its value, gives it on request."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"


def test_every_channel_of_the_contract_is_registered() -> None:
    assert channels() == ["console", "email", "slack", "webhook"]


def test_builds_each_notifier() -> None:
    slack = build_notifier("slack", {"token": FakeSecret("xoxb-1"), "timeout": "2.5"})
    assert isinstance(slack, SlackNotifier) and slack.settings.timeout == 2.5
    assert slack.settings.token == "xoxb-1"
    mail = build_notifier("email", {"host": "smtp.example.test", "port": "587",
                                    "sender": "sia@example.test", "starttls": "yes",
                                    "username": "u", "password": FakeSecret("p")})
    assert isinstance(mail, EmailNotifier)
    assert (mail.settings.port, mail.settings.starttls, mail.settings.password) == (587, True, "p")
    hook = build_notifier("webhook", {"secret": "s3cret", "headers": {"X-Api-Key": "k"}})
    assert isinstance(hook, WebhookNotifier) and hook.settings.secret == b"s3cret"
    console = build_notifier("console", {})
    assert isinstance(console, ConsoleNotifier) and console.settings.stream is sys.stdout
    assert build_notifier("console", {"stream": "stderr"}).settings.stream is sys.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize(("channel", "settings", "message"), [
    ("pager", {}, "unknown notifier channel 'pager'; known: console, email, slack, webhook"),
    ("slack", {}, "slack notifier: missing required setting(s) token"),
    ("email", {"host": "h"}, "email notifier: missing required setting(s) port, sender"),
    ("webhook", {}, "webhook notifier: missing required setting(s) secret"),
    ("slack", {"token": "x", "channel": "C1"},
     "slack notifier: unknown setting(s) channel; known: token, base_url, timeout"),
    ("email", {"host": "h", "port": "twenty-five", "sender": "a@b"},
     "email notifier: setting port must be int, got 'twenty-five'"),
    ("email", {"host": "h", "port": 25, "sender": "a@b", "ssl": "maybe"},
     "email notifier: setting ssl must be bool"),
    ("email", {"host": "h", "port": 25, "sender": "a@b", "ssl": True, "starttls": True},
     "email notifier: choose starttls or ssl, not both"),
    ("slack", {"token": "x", "timeout": -1}, "slack notifier: timeout must be a positive number"),
])
def test_clear_errors(channel: str, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(NotifierSettingsError) as caught:
        build_notifier(channel, settings)
    assert str(caught.value).startswith(message)


def test_errors_never_show_secret_values() -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("slack", {"token": "xoxb has space"}),
        ("email", {"host": "h", "port": 25, "sender": "a@b", "password": "pw-123456"}),
        ("webhook", {"secret": "hook-secret-1", "timeout": 0})]
    for channel, settings in cases:
        with pytest.raises(NotifierSettingsError) as caught:
            build_notifier(channel, settings)
        for value in ("xoxb has space", "pw-123456", "hook-secret-1"):
            assert value not in str(caught.value)


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(NotifierSettingsError, match="must be a mapping"):
        build_notifier("console", [("stream", "stdout")])  # type: ignore[arg-type]
