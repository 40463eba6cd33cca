"""Email notifier: one multipart/alternative message (plain text and escaped HTML) over SMTP.

The Message-ID is derived from `message.message_id`, so a retried send carries the same id
and mail clients and archives can drop the duplicate. Feedback links come from
`message.feedback` (signed, expiring URLs built by `sia.notifiers.tokens.feedback_links`).
SMTP 4xx replies, refused connections and timeouts are retryable; 5xx replies are not.

Transport security: `ssl` is implicit TLS from the first byte (SMTP_SSL, usually port 465),
`starttls` upgrades a plain connection (usually port 587); both verify the server's
certificate (against `cafile` when given, else the system's CAs). A username and password
over neither is refused when the notifier is built, unless `allow_plaintext_auth` says so
(a relay on the same host, say): the password would cross the network in the clear.
"""

from __future__ import annotations

import hashlib
import html
import os
import smtplib
import ssl as ssl_module
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import ClassVar

from sia.notifiers.base import AlertView, Channel, DeliveryError, FeedbackLinks, Message, Notifier
from sia.notifiers.console import (
    alert_context,
    one_line,
    render_text,
    short_evidence,
    shown,
    truncate,
)

SEVERITY_COLOUR = {"high": "#b42318", "medium": "#b54708", "low": "#475467"}


@dataclass(frozen=True)
class EmailSettings:
    """SMTP server, sender and transport security for the email notifier."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0
    allow_plaintext_auth: bool = False
    cafile: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host is empty")
        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 0 < self.port < 65536:
            raise ValueError(f"port must be an integer in 1..65535, got {self.port!r}")
        if "@" not in self.sender or any(c in self.sender for c in "\r\n"):
            raise ValueError(f"sender must be an email address, got {self.sender!r}")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.starttls and self.ssl:
            raise ValueError("choose starttls or ssl, not both")
        if self.username is not None and not (self.starttls or self.ssl) \
                and not self.allow_plaintext_auth:
            raise ValueError("refusing to send the SMTP password over plain text: use ssl "
                             "(implicit TLS, port 465) or starttls (port 587), or set "
                             "allow_plaintext_auth (SIA_SMTP_ALLOW_PLAINTEXT_AUTH=true)")
        if self.cafile is not None and not (self.starttls or self.ssl):
            raise ValueError("cafile is for TLS: set ssl or starttls too")
        if self.cafile is not None and not os.path.isfile(self.cafile):
            raise ValueError(f"cafile {self.cafile!r} is not a file")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) \
                or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")


class EmailNotifier(Notifier):
    """Send each message as one email to the recipient's address."""

    channel: ClassVar[Channel] = "email"
    settings_type: ClassVar[type[EmailSettings]] = EmailSettings
    max_subject: ClassVar[int] = 200
    max_body: ClassVar[int] = 500_000

    def __init__(self, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, ssl: bool = False,
                 timeout: float = 10, allow_plaintext_auth: bool = False,
                 cafile: str | None = None) -> None:
        self.settings = EmailSettings(host=host, port=port, sender=sender, username=username,
                                      password=password, starttls=starttls, ssl=ssl,
                                      timeout=timeout,
                                      allow_plaintext_auth=allow_plaintext_auth,
                                      cafile=cafile)

    def send(self, message: Message) -> str:
        """Deliver one email; return its Message-ID."""
        try:
            mail = self.compose(message)
        except ValueError as exc:  # e.g. an address with a line break in it
            raise DeliveryError(f"cannot build email for {message.message_id}: {exc}",
                                retryable=False) from exc
        self._transmit(mail, message.recipient.address)
        return str(mail["Message-ID"])

    def compose(self, message: Message) -> EmailMessage:
        """The email for `message` (without sending it): headers, text part, HTML part."""
        mail = EmailMessage()
        mail["Subject"] = one_line(shown(message.subject), self.max_subject)
        mail["From"] = self.settings.sender
        mail["To"] = formataddr((one_line(shown(message.recipient.name), 200),
                                 message.recipient.address))
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = message_id_header(message.message_id, self.settings.sender)
        mail["X-SIA-Message-Id"] = one_line(message.message_id, 900)
        mail["X-SIA-Kind"] = message.kind
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        mail.set_content(truncate(render_text(message, links=True), self.max_body))
        mail.add_alternative(truncate(render_html(message), self.max_body), subtype="html")
        return mail

    def _transmit(self, mail: EmailMessage, address: str) -> None:
        s = self.settings
        where = f"SMTP {s.host}:{s.port}"
        try:
            smtp: smtplib.SMTP
            if s.ssl:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                        context=self._tls())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with smtp:
                if s.starttls:
                    smtp.starttls(context=self._tls())
                if s.username is not None and s.password is not None:
                    smtp.login(s.username, s.password)
                smtp.send_message(mail, from_addr=s.sender, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b"refused"))
            raise _smtp_error(where, f"recipient {address} refused", code, reply) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data, auth, helo
            raise _smtp_error(where, type(exc).__name__, exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:  # STARTTLS or AUTH not offered
            raise DeliveryError(f"{where}: {exc}", retryable=False) from exc
        except ssl_module.SSLCertVerificationError as exc:
            raise DeliveryError(f"{where}: certificate refused: {exc.verify_message}",
                                retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refusals, timeouts
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}",
                                retryable=True) from exc

    def _tls(self) -> ssl_module.SSLContext:
        """A verifying TLS context (the configured CA file, else the system's)."""
        return ssl_module.create_default_context(cafile=self.settings.cafile)

    def __repr__(self) -> str:
        return f"EmailNotifier({self.settings!r})"


def _smtp_error(where: str, what: str, code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # 4xx is a transient refusal by definition (RFC 5321 4.2.1); 5xx and oddities are final
    return DeliveryError(f"{where}: {what}: {code} {one_line(text, 200)}",
                         retryable=400 <= code < 500, status=code)


def message_id_header(message_id: str, sender: str) -> str:
    """A valid, stable Message-ID for a SIA message id: same input, same header."""
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2].strip(" >") or "sia.invalid"
    if not all(c.isalnum() or c in "-." for c in domain) or not domain.isascii():
        domain = "sia.invalid"
    return f"<sia.{digest}@{domain}>"


def _e(text: str, quote: bool = True) -> str:
    """Text from data as HTML that shows it literally (html.escape, after `shown`)."""
    return html.escape(shown(text), quote=quote)


def render_html(message: Message) -> str:
    """The HTML part; every piece of text from an alert is escaped."""
    e = _e
    parts = ["<!doctype html><html><body style=\"font-family:sans-serif;max-width:640px\">",
             f"<h2>{e(one_line(message.subject, 1000))}</h2>"]
    if message.text.strip():
        parts.extend("<p>" + "<br>".join(e(line) for line in paragraph.splitlines()) + "</p>"
                     for paragraph in message.text.strip().split("\n\n"))
    if message.kind == "digest" and message.alerts:
        parts.append(f"<p>{len(message.alerts)} alerts in this digest.</p>")
    for alert in message.alerts:
        parts.append(_alert_html(alert, message.recipient.timezone,
                                 message.feedback.get(alert.alert_id)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _alert_html(alert: AlertView, timezone: str, links: FeedbackLinks | None) -> str:
    e = _e
    colour = SEVERITY_COLOUR.get(alert.severity, "#475467")
    explanation = "<br>".join(e(line) for line in alert.explanation.splitlines())
    rows = [
        "<div style=\"border-top:1px solid #ddd;padding:12px 0\">",
        f"<p><strong style=\"color:{colour}\">{e(alert.severity.upper())}</strong> "
        f"<strong>{e(one_line(alert.title, 300))}</strong></p>",
        f"<p>{explanation}</p>",
        f"<p><strong>Suggested action:</strong> {e(alert.action)}</p>",
        f"<p style=\"color:#667085;font-size:13px\">{e(alert_context(alert, timezone))}",
    ]
    if alert.evidence:
        rows.append(f"<br>Evidence: {e(short_evidence(alert.evidence))}")
    rows.append("</p>")
    if links is not None:
        rows.append("<p>" + " · ".join(
            f"<a href=\"{e(url, quote=True)}\">{label}</a>"
            for label, url in (("Useful", links.useful), ("Not useful", links.not_useful),
                               ("Snooze 7 days", links.snooze))) + "</p>")
    rows.append("</div>")
    return "\n".join(rows)
