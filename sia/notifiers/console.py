"""Console notifier: a readable plain-text block per alert, for the demo and for debugging.

This module also holds the plain-text form of a message (`render_text`) and the length
helpers (`one_line`, `truncate`) that the other notifiers reuse for their fallbacks, so a
message reads the same in a terminal, an email's text part and a Slack notification.

Text from data (customer and product names, ids) is shown as it is, with one exception
(`shown`, applied by every human-facing renderer: console, email, Slack): control
characters (NUL, ESC sequences that recolour or rewrite a terminal) become U+FFFD and
bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069, which make
"gpj.exe" read "exe.jpg") are dropped. Markup escaping is each notifier's own (Slack
mrkdwn, HTML): plain text is not escaped.
"""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sia.notifiers.base import AlertView, Channel, FeedbackLinks, Message, Notifier

log = logging.getLogger(__name__)

ELLIPSIS = "…"
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e"
                                        "\u2066\u2067\u2068\u2069"))
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SEVERITY_LABEL = {"high": "HIGH", "medium": "MEDIUM", "low": "LOW"}
EVIDENCE_SHOWN = 5


def shown(text: str) -> str:
    """Text from data, safe to show a person: line breaks kept (CR LF, CR, U+2028 become
    LF), tabs kept, other control characters replaced by U+FFFD, bidi overrides dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n") \
        .replace("\u2029", "\n")
    return _CONTROLS.sub("\ufffd", text.translate(_BIDI_CONTROLS))


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def one_line(text: str, limit: int) -> str:
    """Whitespace (newlines included) collapsed to single spaces, then truncated."""
    return truncate(" ".join(text.split()), limit)


def local_time(moment: datetime, timezone: str) -> str:
    """`moment` as 'YYYY-MM-DD HH:MM ZONE' in the recipient's zone (UTC if unknown)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def short_evidence(evidence: tuple[str, ...], shown: int = EVIDENCE_SHOWN) -> str:
    """The first few event ids, then how many more: 'e1, e2, e3 (+4 more)'."""
    head = ", ".join(one_line(item, 40) for item in evidence[:shown])
    rest = len(evidence) - shown
    return head + (f" (+{rest} more)" if rest > 0 else "")


def alert_context(alert: AlertView, timezone: str) -> str:
    """One line: the subject, when it happened, and the money at stake."""
    parts = [f"{alert.subject_kind} {alert.subject_id}", local_time(alert.occurred_at, timezone)]
    if alert.value:
        parts.append(f"value {alert.value:,.2f}")
    return " · ".join(parts)


def render_alert(alert: AlertView, timezone: str, links: FeedbackLinks | None = None,
                 width: int = 100) -> str:
    """Plain-text block for one alert: severity and title, explanation, action, evidence."""
    return shown(_render_alert(alert, timezone, links, width))


def _render_alert(alert: AlertView, timezone: str, links: FeedbackLinks | None,
                  width: int) -> str:
    label = SEVERITY_LABEL.get(alert.severity, alert.severity.upper())
    lines = [f"[{label}] {one_line(alert.title, 300)}"]
    for paragraph in alert.explanation.splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, width, initial_indent="  ",
                                   subsequent_indent="  ") or [""])
    lines.append(f"  Suggested action: {one_line(alert.action, 1000)}")
    lines.append(f"  {alert_context(alert, timezone)}")
    if alert.evidence:
        lines.append(f"  Evidence: {short_evidence(alert.evidence)}")
    if links is not None:
        lines.append(f"  Useful: {links.useful}")
        lines.append(f"  Not useful: {links.not_useful}")
        lines.append(f"  Snooze 7 days: {links.snooze}")
    return "\n".join(lines)


def render_text(message: Message, *, links: bool = False, heading: bool = True) -> str:
    """The whole message as plain text; `links` adds the email feedback URLs per alert."""
    blocks = [one_line(shown(message.subject), 1000)] if heading else []
    if message.text.strip():
        blocks.append(shown(message.text.strip()))
    if message.kind == "digest" and message.alerts:
        blocks.append(f"{len(message.alerts)} alerts in this digest.")
    tz = message.recipient.timezone
    for alert in message.alerts:
        feedback = message.feedback.get(alert.alert_id) if links else None
        blocks.append(render_alert(alert, tz, feedback))
    return "\n\n".join(blocks)


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console notifier writes (standard output unless told otherwise)."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)

    def __post_init__(self) -> None:
        if not callable(getattr(self.stream, "write", None)):
            raise ValueError("stream must be a writable text stream")


class ConsoleNotifier(Notifier):
    """Print each message as a readable block; never fails."""

    channel: ClassVar[Channel] = "console"
    settings_type: ClassVar[type[ConsoleSettings]] = ConsoleSettings

    def __init__(self, stream: TextIO | str | None = None) -> None:
        if isinstance(stream, str):  # from a settings file: "stdout" or "stderr"
            if stream not in ("stdout", "stderr"):
                raise ValueError(f"stream must be stdout, stderr or a stream, got {stream!r}")
            stream = sys.stdout if stream == "stdout" else sys.stderr
        self.settings = ConsoleSettings(stream if stream is not None else sys.stdout)

    def send(self, message: Message) -> str:
        """Write the message; a broken stream is logged, never raised (it is only a demo aid)."""
        rule = "─" * 72
        who = message.recipient.name or message.recipient.address
        if message.recipient.rep_id:
            who += f" (rep {message.recipient.rep_id})"
        who = one_line(shown(who), 300)
        subject = one_line(shown(message.subject), self.max_subject)
        head = f"{rule}\nSIA {message.kind} for {who}\n{subject}"
        body = truncate(render_text(message, links=True, heading=False), self.max_body)
        try:
            self.settings.stream.write(f"{head}\n\n{body}\n{rule}\n")
            self.settings.stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stream
            log.warning("console notifier could not write message %s: %s",
                        message.message_id, exc)
        return message.message_id

    def __repr__(self) -> str:
        name = getattr(self.settings.stream, "name", type(self.settings.stream).__name__)
        return f"ConsoleNotifier(stream={name!r})"
