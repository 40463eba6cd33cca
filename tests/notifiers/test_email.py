"""EmailNotifier against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import html
import re
import socket
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sia.notifiers.base import DeliveryError
from sia.notifiers.email import EmailNotifier, EmailSettings, message_id_header
from sia.notifiers.tokens import read_token

from .builders import FEEDBACK_BASE, FEEDBACK_SECRET, NOW, alert_view, message
from .servers import SMTP_PASSWORD, SMTP_USER, SMTPServer

RECIPIENT = "dana.reyes@example.test"
SENDER = "sia@alerts.example.test"


@pytest.fixture
def mailer(smtp_server: SMTPServer) -> EmailNotifier:
    return EmailNotifier("127.0.0.1", smtp_server.port, SENDER, timeout=2)


def parts(mail: EmailMessage) -> tuple[str, str]:
    """(text part, HTML part) of a multipart/alternative email."""
    text = mail.get_body(preferencelist=("plain",))
    rich = mail.get_body(preferencelist=("html",))
    assert text is not None and rich is not None
    return text.get_content(), rich.get_content()


def send_error(notifier: EmailNotifier, address: str = RECIPIENT) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(message("alert", address=address, channel="email"))
    return caught.value


def test_sends_multipart_text_and_html(mailer: EmailNotifier, smtp_server: SMTPServer) -> None:
    receipt = mailer.send(message("alert", address=RECIPIENT, channel="email"))
    [mail] = smtp_server.messages
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == "Acme 1 orders dropped 75%"
    assert mail["From"] == SENDER
    assert mail["To"] == f"Dana Reyes <{RECIPIENT}>"
    assert mail["X-SIA-Message-Id"] == "msg-alert-1"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert receipt == mail["Message-ID"]
    assert smtp_server.handler.envelopes[0].rcpt_tos == [RECIPIENT]
    text, rich = parts(mail)
    for body in (text, rich):
        for number in ("12.0", "3 times", "4,820.50", "C0001"):
            assert number in body
        assert "Call the buyer this week" in body


def test_html_part_escapes_alert_text(mailer: EmailNotifier, smtp_server: SMTPServer) -> None:
    nasty = alert_view(1, title="<script>alert(1)</script> R&D",
                       explanation='Margin < 5% & "falling"\n<img src=x onerror=y>')
    mailer.send(message("alert", address=RECIPIENT, channel="email", alerts=(nasty,)))
    _, rich = parts(smtp_server.messages[0])
    assert "<script>" not in rich and "<img" not in rich
    assert "&lt;script&gt;alert(1)&lt;/script&gt; R&amp;D" in rich
    assert "Margin &lt; 5% &amp; &quot;falling&quot;<br>&lt;img src=x onerror=y&gt;" in rich


def test_message_id_is_stable_across_resends(mailer: EmailNotifier,
                                             smtp_server: SMTPServer) -> None:
    first = mailer.send(message("alert", address=RECIPIENT, channel="email"))
    second = mailer.send(message("alert", address=RECIPIENT, channel="email"))
    other = mailer.send(message("alert", address=RECIPIENT, channel="email", message_id="m-2"))
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert ids[0] == ids[1] == first == second != other == ids[2]
    assert re.fullmatch(r"<sia\.[0-9a-f]{32}@alerts\.example\.test>", first)


def test_message_id_header_is_valid_for_any_id() -> None:
    assert message_id_header("a b:c\n<d>", "x@y.z") == message_id_header("a b:c\n<d>", "x@y.z")
    assert re.fullmatch(r"<sia\.[0-9a-f]{32}@y\.z>", message_id_header("a b:c\n<d>", "x@y.z"))
    assert message_id_header("m", "odd@[127.0.0.1]").endswith("@sia.invalid>")


def test_feedback_links_are_present_and_their_tokens_verify(
        mailer: EmailNotifier, smtp_server: SMTPServer) -> None:
    mailer.send(message("group", 3, address=RECIPIENT, channel="email"))
    text, rich = parts(smtp_server.messages[0])
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', rich)]
    assert len(hrefs) == 9
    seen: set[tuple[str, str]] = set()
    for href in hrefs:
        assert href.startswith(f"{FEEDBACK_BASE}/feedback/email?token=")
        assert href in text  # the text part carries the same links
        token = parse_qs(urlsplit(href).query)["token"][0]
        claim = read_token(FEEDBACK_SECRET, token, now=NOW + 60)
        assert claim.rep_id == "rep-7"
        seen.add((claim.alert_id, claim.verdict))
    assert seen == {(f"al-{i:04d}", v) for i in (1, 2, 3)
                    for v in ("useful", "not_useful", "snooze_7d")}
    for label in (">Useful<", ">Not useful<", ">Snooze 7 days<"):
        assert rich.count(label) == 3


def test_digest_and_notice(mailer: EmailNotifier, smtp_server: SMTPServer) -> None:
    mailer.send(message("digest", 5, address=RECIPIENT, channel="email"))
    mailer.send(message("notice", address=RECIPIENT, channel="email"))
    digest, notice = smtp_server.messages
    assert "5 alerts in this digest" in parts(digest)[0]
    assert "they are back on" in parts(notice)[0] and "they are back on" in parts(notice)[1]


def test_long_subject_is_cut_to_one_line(mailer: EmailNotifier,
                                         smtp_server: SMTPServer) -> None:
    mailer.send(message("alert", address=RECIPIENT, channel="email",
                        subject="Revenue\nat risk " + "y" * 500))
    subject = smtp_server.messages[0]["Subject"]
    assert len(subject) == EmailNotifier.max_subject and subject.endswith("…")
    assert subject.startswith("Revenue at risk y")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_username_and_password() -> None:
    with SMTPServer(auth=True) as server:  # plain text: only when told so
        good = EmailNotifier("127.0.0.1", server.port, SENDER, username=SMTP_USER,
                             password=SMTP_PASSWORD, timeout=2, allow_plaintext_auth=True)
        good.send(message("alert", address=RECIPIENT, channel="email"))
        assert len(server.messages) == 1
        bad = EmailNotifier("127.0.0.1", server.port, SENDER, username=SMTP_USER,
                            password="wrong", timeout=2, allow_plaintext_auth=True)
        error = send_error(bad)
        assert not error.retryable and error.status == 535
        anonymous = EmailNotifier("127.0.0.1", server.port, SENDER, timeout=2)
        error = send_error(anonymous)  # 530 authentication required
        assert not error.retryable and error.status == 530


def test_server_down_is_retryable(closed_port: int) -> None:
    error = send_error(EmailNotifier("127.0.0.1", closed_port, SENDER, timeout=1))
    assert error.retryable and "ConnectionRefusedError" in error.reason


def test_silent_server_times_out_retryably() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        notifier = EmailNotifier("127.0.0.1", silent.getsockname()[1], SENDER, timeout=0.1)
        error = send_error(notifier)
    assert error.retryable and "timed out" in error.reason


def test_refused_recipient_is_permanent(mailer: EmailNotifier, smtp_server: SMTPServer) -> None:
    smtp_server.handler.refuse[RECIPIENT] = "550 5.1.1 <dana.reyes@example.test>: unknown user"
    error = send_error(mailer)
    assert not error.retryable and error.status == 550 and "unknown user" in error.reason
    assert smtp_server.messages == []


def test_recipient_greylisted_is_retryable(mailer: EmailNotifier,
                                           smtp_server: SMTPServer) -> None:
    smtp_server.handler.refuse[RECIPIENT] = "450 4.2.0 greylisted, try again later"
    error = send_error(mailer)
    assert error.retryable and error.status == 450


@pytest.mark.parametrize(("reply", "retryable"), [
    ("451 4.3.0 local problem, try later", True),
    ("452 4.3.1 insufficient storage", True),
    ("554 5.7.1 message rejected as spam", False),
    ("552 5.3.4 message too big", False)])
def test_data_replies_are_classified_by_their_class(mailer: EmailNotifier,
                                                    smtp_server: SMTPServer, reply: str,
                                                    retryable: bool) -> None:
    smtp_server.handler.data_replies.append(reply)
    error = send_error(mailer)
    assert error.retryable is retryable and error.status == int(reply[:3])


def test_starttls_not_offered_is_permanent(smtp_server: SMTPServer) -> None:
    notifier = EmailNotifier("127.0.0.1", smtp_server.port, SENDER, starttls=True, timeout=2)
    error = send_error(notifier)
    assert not error.retryable and "STARTTLS" in error.reason


def test_address_with_line_break_is_permanent(mailer: EmailNotifier,
                                              smtp_server: SMTPServer) -> None:
    error = send_error(mailer, address="a@example.test\nBcc: everyone@example.test")
    assert not error.retryable
    assert smtp_server.messages == []


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"host": ""}, "host"), ({"port": 0}, "port"), ({"port": "25"}, "port"),
    ({"sender": "nobody"}, "sender"), ({"username": "u"}, "together"),
    ({"starttls": True, "ssl": True}, "not both"), ({"timeout": -1}, "timeout")])
def test_settings_are_validated(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        EmailSettings(**{"host": "127.0.0.1", "port": 25, "sender": SENDER, **changes})


def test_repr_hides_the_password() -> None:
    notifier = EmailNotifier("smtp.example.test", 587, SENDER, username="u",
                             password="s3cret-pass", starttls=True)
    assert "s3cret-pass" not in repr(notifier) and "smtp.example.test" in repr(notifier)
