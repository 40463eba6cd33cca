"""Notifier hardening (issue 18): what a receiver answers cannot crash or park delivery,
a Slack post that may have gone through is not posted twice, SMTP does not hand a password
over plain text, and text from CRM data cannot inject markup or mentions.

Real servers: the webhook receiver and aiosmtpd of tests/notifiers/servers.py, the Slack
Web API stand-in of tests/notifiers/slack_api.py.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from notifiers.builders import message  # type: ignore[import-not-found]
from notifiers.servers import (  # type: ignore[import-not-found]
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SMTPServer,
    WebhookReceiver,
)
from notifiers.slack_api import (  # type: ignore[import-not-found]
    CHANNEL,
    TOKEN,
    Failure,
    SlackAPI,
)

from sia.notifiers.base import DeliveryError, error_for_status
from sia.notifiers.slack import SlackNotifier
from sia.notifiers.webhook import WebhookNotifier

CAP = 86_400.0  # the documented longest wait a Retry-After can impose: a day


def webhook_error(receiver: WebhookReceiver, headers: dict[str, str]) -> DeliveryError:
    receiver.reply_next(429, headers, "slow down")
    hook = WebhookNotifier(WEBHOOK_SECRET, timeout=2)
    with pytest.raises(DeliveryError) as caught:
        hook.send(message("alert", address=receiver.url, channel="webhook"))
    return caught.value


# --- Retry-After --------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("inf", CAP), ("Infinity", CAP), ("-inf", 0.0), ("nan", CAP), ("3e11", CAP),
    ("1e309", CAP), ("-5", 0.0), ("42", 42.0), ("Fri, 31 Dec 9999 23:59:59 GMT", CAP)])
def test_webhook_retry_after_is_finite_and_capped(receiver: WebhookReceiver, header: str,
                                                  expected: float) -> None:
    # before: inf, 1e309 and 3e11 came through as such (the worker then crashed or parked the
    # message for millennia); nan came through as nan
    error = webhook_error(receiver, {"Retry-After": header})
    assert error.retryable and error.retry_after is not None
    assert math.isfinite(error.retry_after) and error.retry_after == pytest.approx(expected)


def test_a_retry_after_date_is_read_and_capped(receiver: WebhookReceiver) -> None:
    soon = webhook_error(receiver, {"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    assert soon.retry_after is not None and 100 < soon.retry_after <= 121
    later = webhook_error(receiver, {"Retry-After": formatdate(time.time() + 10 * CAP,
                                                               usegmt=True)})
    assert later.retry_after == CAP


def test_slack_retry_after_is_capped(slack_api: SlackAPI) -> None:
    slack = SlackNotifier(TOKEN, base_url=slack_api.base_url, timeout=2)
    for value in ("inf", "3e11"):
        slack_api.fail_next(Failure(429, {"ok": False, "error": "ratelimited"},
                                    {"Retry-After": value}))
        with pytest.raises(DeliveryError) as caught:
            slack.send(message("alert", address=CHANNEL))
        assert caught.value.retryable and caught.value.retry_after == CAP


def test_the_shared_rule_caps_whatever_the_transport() -> None:
    for value in ("inf", "nan", "1e400", "99999999999999999999"):
        error = error_for_status(503, retry_after=value, where="x")
        assert error is not None and error.retry_after == CAP
    error = error_for_status(503, retry_after="whenever", where="x")
    assert error is not None and error.retry_after is None


# --- SMTP: no password over plain text; implicit TLS -----------------------------------------

SENDER = "sia@alerts.example.test"
RECIPIENT = "dana.reyes@example.test"


def mail_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    from sia.settings import Settings

    for name in [n for n in os.environ if n.startswith("SIA_SMTP")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(f"SIA_{name.upper()}", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_password_over_plain_text_is_refused_unless_allowed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.config import ConfigError
    from sia.delivery.notifiers import notifiers_from
    from sia.notifiers.email import EmailNotifier
    from sia.notifiers.registry import build_notifier

    # before: built, and the password crossed the network in the clear at the first send
    with pytest.raises(ValueError, match="plain text"):
        EmailNotifier("smtp.example.test", 25, SENDER, username=SMTP_USER,
                      password=SMTP_PASSWORD)
    with pytest.raises(ConfigError, match="SIA_SMTP_ALLOW_PLAINTEXT_AUTH") as caught:
        build_notifier("email", {"host": "smtp.example.test", "port": 25, "sender": SENDER,
                                 "username": SMTP_USER, "password": SMTP_PASSWORD})
    assert SMTP_PASSWORD not in str(caught.value)
    settings = mail_settings(monkeypatch, smtp_host="smtp.example.test",
                             smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    with pytest.raises(ConfigError):  # `sia deliver` stops with the message, exit 2
        notifiers_from(settings)
    allowed = mail_settings(monkeypatch, smtp_host="127.0.0.1", smtp_username=SMTP_USER,
                            smtp_password=SMTP_PASSWORD, smtp_allow_plaintext_auth="true")
    assert notifiers_from(allowed)["email"].settings.allow_plaintext_auth  # type: ignore[attr-defined]


def test_implicit_tls_logs_in_and_sends_over_tls() -> None:
    from sia.notifiers.email import EmailNotifier

    with SMTPServer(auth=True, tls="implicit") as server:
        mailer = EmailNotifier("127.0.0.1", server.port, SENDER, username=SMTP_USER,
                               password=SMTP_PASSWORD, ssl=True, cafile=server.cafile,
                               timeout=2)
        mailer.send(message("alert", address=RECIPIENT, channel="email"))
        assert len(server.messages) == 1
        plain = EmailNotifier("127.0.0.1", server.port, SENDER, timeout=1)
        with pytest.raises(DeliveryError):  # the port speaks TLS only
            plain.send(message("alert", address=RECIPIENT, channel="email"))


def test_starttls_logs_in_after_the_upgrade() -> None:
    from sia.notifiers.email import EmailNotifier

    with SMTPServer(auth=True, tls="starttls") as server:
        mailer = EmailNotifier("127.0.0.1", server.port, SENDER, username=SMTP_USER,
                               password=SMTP_PASSWORD, starttls=True, cafile=server.cafile,
                               timeout=2)
        mailer.send(message("alert", address=RECIPIENT, channel="email"))
        assert len(server.messages) == 1


def test_an_untrusted_certificate_is_a_permanent_error() -> None:
    from sia.notifiers.email import EmailNotifier

    with SMTPServer(auth=True, tls="implicit") as server:
        mailer = EmailNotifier("127.0.0.1", server.port, SENDER, username=SMTP_USER,
                               password=SMTP_PASSWORD, ssl=True, timeout=2)  # system CAs
        with pytest.raises(DeliveryError) as caught:
            mailer.send(message("alert", address=RECIPIENT, channel="email"))
        assert not caught.value.retryable and "certificate" in caught.value.reason
        assert server.messages == []


def test_smtp_ssl_is_a_setting_and_defaults_to_port_465(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.delivery.notifiers import notifiers_from

    implicit = notifiers_from(mail_settings(monkeypatch, smtp_host="smtp.example.test",
                                            smtp_ssl="true", smtp_username=SMTP_USER,
                                            smtp_password=SMTP_PASSWORD))["email"]
    assert (implicit.settings.ssl, implicit.settings.port) == (True, 465)  # type: ignore[attr-defined]
    chosen = notifiers_from(mail_settings(monkeypatch, smtp_host="smtp.example.test",
                                          smtp_ssl="true", smtp_port="2465"))["email"]
    assert chosen.settings.port == 2465  # type: ignore[attr-defined]
    plain = notifiers_from(mail_settings(monkeypatch, smtp_host="smtp.example.test"))["email"]
    assert (plain.settings.ssl, plain.settings.port) == (False, 25)  # type: ignore[attr-defined]


# --- Slack: a post that may have gone through is looked for, not made again ----------------

def slack_notifier(api: SlackAPI, timeout: float = 0.5) -> SlackNotifier:
    return SlackNotifier(TOKEN, base_url=api.base_url, timeout=timeout)


def posts_of(api: SlackAPI, message_id: str) -> list[dict[str, Any]]:
    return [m for m in api.history.get(CHANNEL, [])
            if (m.get("metadata") or {}).get("event_payload", {}).get("message_id")
            == message_id]


def test_every_post_carries_its_message_id_in_the_metadata(slack_api: SlackAPI) -> None:
    slack_notifier(slack_api).send(message("alert", address=CHANNEL, message_id="m-17"))
    (posted,) = slack_api.posted()
    # before: no metadata, so nothing to recognise a post by
    assert posted["metadata"] == {"event_type": "sia_message",
                                  "event_payload": {"message_id": "m-17", "kind": "alert"}}


@pytest.mark.parametrize("failure", [
    Failure(stall=True, after=True),  # timed out after Slack posted
    Failure(drop=True, after=True),  # connection reset after the post
    Failure(500, "<html>oops</html>", after=True),  # a 5xx after the post
    Failure(200, {"ok": False, "error": "internal_error"}, after=True)])
def test_a_post_that_may_have_gone_through_is_not_made_twice(
        slack_api: SlackAPI, failure: Failure) -> None:
    slack = slack_notifier(slack_api)
    mine = message("alert", address=CHANNEL, message_id="m-ambiguous")
    slack_api.fail_next(failure)
    with pytest.raises(DeliveryError) as caught:
        slack.send(mine)
    assert caught.value.retryable and caught.value.maybe_delivered
    (first,) = posts_of(slack_api, "m-ambiguous")
    receipt = slack.send(mine)  # the retry, in the same process
    # before: posted again, the rep saw the alert twice
    assert receipt == first["ts"] and len(posts_of(slack_api, "m-ambiguous")) == 1
    history = slack_api.calls_to("conversations.history")
    assert history and history[0].params["include_all_metadata"] in ("1", "true", True)


def test_a_retry_in_another_process_looks_before_posting(slack_api: SlackAPI) -> None:
    mine = message("alert", address=CHANNEL, message_id="m-other-process")
    slack_api.fail_next(Failure(stall=True, after=True))
    with pytest.raises(DeliveryError):
        slack_notifier(slack_api).send(mine)
    later = slack_notifier(slack_api)  # `sia deliver` again: a new notifier knows nothing
    receipt = later.send(dataclasses.replace(mine, maybe_delivered=True))
    assert receipt == posts_of(slack_api, "m-other-process")[0]["ts"]
    assert len(slack_api.posted()) == 1


def test_a_post_that_never_went_out_is_posted_on_the_retry(slack_api: SlackAPI) -> None:
    slack = slack_notifier(slack_api)
    mine = message("alert", address=CHANNEL, message_id="m-lost")
    slack_api.drop_next()  # dropped before Slack did anything
    with pytest.raises(DeliveryError):
        slack.send(mine)
    assert posts_of(slack_api, "m-lost") == []
    slack.send(mine)
    assert len(posts_of(slack_api, "m-lost")) == 1


def test_the_search_reads_past_the_first_page(slack_api: SlackAPI,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sia.notifiers.slack as slack_module

    monkeypatch.setattr(slack_module, "HISTORY_PAGE", 2)
    slack = slack_notifier(slack_api)
    mine = message("alert", address=CHANNEL, message_id="m-paged")
    slack_api.fail_next(Failure(stall=True, after=True))
    with pytest.raises(DeliveryError):
        slack.send(mine)
    for i in range(5):  # later posts push it to the third page
        slack.send(message("alert", address=CHANNEL, message_id=f"m-later-{i}"))
    slack.send(mine)
    assert len(posts_of(slack_api, "m-paged")) == 1
    assert len(slack_api.calls_to("conversations.history")) == 3


def test_a_failed_search_does_not_post_blind(slack_api: SlackAPI) -> None:
    slack = slack_notifier(slack_api)
    mine = message("alert", address=CHANNEL, message_id="m-search-fails")
    slack_api.fail_next(Failure(stall=True, after=True))
    with pytest.raises(DeliveryError):
        slack.send(mine)
    slack_api.server_error_next(503)  # conversations.history is down
    with pytest.raises(DeliveryError) as caught:
        slack.send(mine)
    assert caught.value.retryable and "looking for an earlier post" in caught.value.reason
    assert len(posts_of(slack_api, "m-search-fails")) == 1


def test_without_the_history_scope_the_message_is_posted_again_with_a_warning(
        slack_api: SlackAPI, caplog: pytest.LogCaptureFixture) -> None:
    slack_api.history_scope = False
    mine = message("alert", address=CHANNEL, message_id="m-no-scope")
    receipt = slack_notifier(slack_api).send(dataclasses.replace(mine, maybe_delivered=True))
    assert receipt and len(posts_of(slack_api, "m-no-scope")) == 1  # at least once
    assert "missing_scope" in caplog.text


def test_the_worker_says_when_a_message_may_have_been_delivered(
        slack_api: SlackAPI, tmp_path: Path) -> None:
    from delivery.conftest import T0, alert, catalog  # type: ignore[import-not-found]
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from sia.alerts.store import AlertStore
    from sia.delivery.service import Delivery
    from sia.delivery.tables import DeliveryAttempt, OutboxMessage
    from sia.delivery.worker import DeliveryWorker

    routes = tmp_path / "routing.yaml"
    routes.write_text('receivers:\n  sales: {kind: slack_channel, channel: "' + CHANNEL
                      + '"}\nroute:\n  receivers: [sales]\n  quiet_hours: null\n')
    store = AlertStore(f"sqlite:///{tmp_path / 'sia.db'}")

    def deliver(now_minutes: float) -> Any:
        worker = DeliveryWorker(store, {"slack": slack_notifier(slack_api)})  # a new process
        d = Delivery(store, catalog(), {}, routes=routes, worker=worker)
        return d.step(T0 + timedelta(minutes=now_minutes))

    store.add([alert("C1", 0)])
    deliver(0)
    slack_api.fail_next(Failure(stall=True, after=True))
    assert deliver(15).retried == 1
    assert deliver(120).sent == 1
    with Session(store.engine) as session:
        (sent,) = session.scalars(select(OutboxMessage)).all()
        tries = session.scalars(select(DeliveryAttempt)).all()
    assert [t.ok for t in tries] == [False, True]
    assert len(slack_api.posted()) == 1  # before: 2, the alert shown twice
    assert sent.receipt == slack_api.history[CHANNEL][0]["ts"]
    store.close()


# --- text from CRM data: no markup, mentions, links or control characters -------------------

EVIL = ("Acme <!channel> <!here> <@U0SIAREP1> <#C0SIASALES> <https://evil.example|click here> "
        "<script>alert(1)</script> R&D &lt;b&gt; \u202egpj.exe\u202c \x00nul \x1b[31mred\x1b[0m")
CONTROL = ("\x00", "\x1b", "\u202e", "\u202c")


def evil_message(channel: str, address: str) -> Any:
    from notifiers.builders import alert_view  # type: ignore[import-not-found]

    alert = alert_view(1, title=f"{EVIL} orders dropped", explanation=f"{EVIL}\nline two",
                       action=f"Call {EVIL}", subject_id=f"C1 {EVIL}",
                       evidence=(f"ev {EVIL}",))
    return message("group", alerts=(alert, alert_view(2, title=EVIL)), channel=channel,
                   address=address, subject=f"{EVIL} subject", text=EVIL)


def slack_texts(posted: dict[str, Any]) -> list[str]:
    texts = [posted["text"]]
    for block in posted["blocks"]:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def test_slack_shows_data_literally_never_as_mentions_links_or_controls(
        slack_api: SlackAPI) -> None:
    slack_notifier(slack_api).send(evil_message("slack", CHANNEL))
    (posted,) = slack_api.posted()
    assert posted["link_names"] in (False, "0", 0) and posted["parse"] == "none"
    mrkdwn = slack_texts(posted)
    header = mrkdwn.pop(1)  # the header block is plain_text; the rest is mrkdwn
    for text in mrkdwn:  # every mrkdwn field, and the notification text
        for injected in ("<!channel>", "<!here>", "<@U0SIAREP1>", "<#C0SIASALES>",
                         "<https://", "<script>"):
            assert injected not in text
        assert all(c not in text for c in CONTROL)
    body = "\n".join(mrkdwn)
    assert "&lt;!channel&gt;" in body and "&lt;@U0SIAREP1&gt;" in body
    assert "R&amp;D" in body and "&amp;lt;b&amp;gt;" in body  # shown as written
    assert "Acme" in header and all(c not in header for c in CONTROL)  # plain_text


def test_email_html_is_escaped_and_every_part_is_free_of_controls(
        smtp_server: SMTPServer) -> None:
    from sia.notifiers.email import EmailNotifier

    mailer = EmailNotifier("127.0.0.1", smtp_server.port, SENDER, timeout=2)
    mailer.send(evil_message("email", RECIPIENT))
    (mail,) = smtp_server.messages
    text = mail.get_body(preferencelist=("plain",)).get_content()
    rich = mail.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in rich and "&lt;script&gt;" in rich and "R&amp;D" in rich
    assert "<script>alert(1)</script>" in text and "R&D" in text  # plain text: as written
    for part in (text, rich, str(mail["Subject"])):
        assert all(c not in part for c in CONTROL)  # before: NUL, ESC and U+202E got through


def test_the_console_cannot_be_rewritten_by_data() -> None:
    import io

    from sia.notifiers.console import ConsoleNotifier

    out = io.StringIO()
    ConsoleNotifier(out).send(evil_message("console", "-"))
    written = out.getvalue()
    assert all(c not in written for c in CONTROL)  # before: ESC sequences reached the terminal
    assert "<!channel>" in written and "R&D" in written  # plain text is not escaped


def test_the_webhook_keeps_data_as_it_is(receiver: WebhookReceiver) -> None:
    hook = WebhookNotifier(WEBHOOK_SECRET, timeout=2)
    hook.send(evil_message("webhook", receiver.url))
    body = receiver.received[0].json()
    assert body["alerts"][1]["title"] == EVIL  # data for machines: JSON-escaped, unchanged
