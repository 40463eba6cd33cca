"""Slack notifier: a Block Kit message per delivery, posted with slack-sdk's WebClient.

A user id (U..., W...) is a direct message: `conversations.open` gives its DM channel (kept
per notifier, so later sends make one call), then `chat.postMessage` posts there; any other
address (C..., G..., D..., #name) is posted to directly. Each alert is a section (severity,
title, explanation, suggested action), a context line (subject, time, evidence) and three
feedback buttons whose `value` is JSON {"alert_id", "verdict"}. Slack's limits are respected
by cutting, never by failing: 50 blocks (the rest is summarised in a context block), 150
characters in the header, 3,000 in a section.

slack-sdk's own retry handlers are switched off (`retry_handlers=[]`): whether and when to
try again is the delivery worker's decision, from the DeliveryError raised here.

Once means once: every post carries the SIA message id in its message metadata
(``{"event_type": "sia_message", "event_payload": {"message_id": ...}}``). A post that
failed ambiguously (timed out, connection lost after sending, HTTP 5xx, Slack's
internal_error) may have been made; before posting such a message again (the worker says
so with `Message.maybe_delivered`, and the notifier remembers its own), the channel's
recent history (`conversations.history` with `include_all_metadata`, the last
`HISTORY_LOOKBACK_S`) is searched for that id, and a post found there is the receipt.
That needs the history scopes (channels:history, groups:history, im:history); without
them the message is posted again (at least once) and a warning says why.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from sia.notifiers.base import (
    AlertView,
    Channel,
    DeliveryError,
    Message,
    Notifier,
    error_for_status,
)
from sia.notifiers.console import (
    SEVERITY_LABEL,
    alert_context,
    one_line,
    render_text,
    short_evidence,
    shown,
    truncate,
)

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
METADATA_EVENT = "sia_message"  # event_type of the metadata on every SIA post
HISTORY_LOOKBACK_S = 3 * 86_400.0  # a retry comes within a day (the Retry-After cap)
HISTORY_PAGE = 200  # messages per conversations.history page
HISTORY_PAGES = 5  # at most this many pages are searched
MAX_SECTION = 3000
SEVERITY_ICON = {"high": ":red_circle:", "medium": ":large_orange_circle:",
                 "low": ":large_yellow_circle:"}
FEEDBACK_BUTTONS = (("Useful", "useful", "sia_useful"),
                    ("Not useful", "not_useful", "sia_not_useful"),
                    ("Snooze 7 days", "snooze_7d", "sia_snooze"))
# `ok: false` errors where trying again later can succeed; every other error is permanent
RETRYABLE_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout", "team_added_to_org"})
# `ok: false` errors after which the post may have been made anyway (Slack: "it's possible
# some aspect of the operation succeeded before the error was raised")
MAYBE_DONE_ERRORS = frozenset({"internal_error", "fatal_error", "request_timeout"})


@dataclass(frozen=True)
class SlackSettings:
    """Bot token, API root and timeout for the Slack notifier."""

    token: str = field(repr=False)
    base_url: str = "https://slack.com/api/"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise ValueError("token is empty")
        if any(c.isspace() for c in self.token.strip()):
            raise ValueError("token contains whitespace")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) \
                or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")


class SlackNotifier(Notifier):
    """Post each message to a Slack channel or a user's DM; return the message ts."""

    channel: ClassVar[Channel] = "slack"
    settings_type: ClassVar[type[SlackSettings]] = SlackSettings
    max_subject: ClassVar[int] = 150  # header block plain_text limit
    max_body: ClassVar[int] = 4000  # `text` fallback: Slack truncates long text, advises 4,000

    def __init__(self, token: str, base_url: str = "https://slack.com/api/",
                 timeout: float = 10) -> None:
        self.settings = SlackSettings(token=token, base_url=base_url, timeout=timeout)
        self._client = WebClient(
            token=self.settings.token.strip(),
            base_url=self.settings.base_url,
            # slack-sdk annotates int but hands the value to urlopen, which takes float
            timeout=cast(int, self.settings.timeout),
            retry_handlers=[],  # no hidden retries: the delivery worker decides
        )
        self._dm_channels: dict[str, str] = {}
        self._uncertain: set[str] = set()  # message ids whose post failed ambiguously

    def send(self, message: Message) -> str:
        """Post once (after opening the DM for a user id); return the message ts. A message
        that may have been posted already is looked for in the channel first."""
        channel = self._channel_for(message.recipient.address)
        if message.maybe_delivered or message.message_id in self._uncertain:
            found = self.find_posted(channel, message.message_id)
            if found is not None:
                self._uncertain.discard(message.message_id)
                return found
        try:
            response = self._call("chat.postMessage", lambda: self._client.chat_postMessage(
                channel=channel,
                text=_fit(mrkdwn_escape(render_text(message).strip()
                                        or self.headline(message)), self.max_body),
                blocks=self.blocks(message),
                metadata=metadata_for(message),
                unfurl_links=False,
                unfurl_media=False,
                link_names=False,  # "@here" in data stays text; mentions need <!here>
                parse="none",
            ))
        except DeliveryError as exc:
            if exc.maybe_delivered:
                self._uncertain.add(message.message_id)
            raise
        self._uncertain.discard(message.message_id)
        return str(response.get("ts") or "")

    def find_posted(self, channel: str, message_id: str) -> str | None:
        """The ts of a post carrying `message_id` in the channel's recent history, or None.

        A transient failure of the search raises a retryable DeliveryError (the message is
        not posted blind); a permanent one (a missing history scope) logs a warning and
        gives None, so the message is posted again rather than never.
        """
        oldest = f"{time.time() - HISTORY_LOOKBACK_S:.6f}"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            def page(at: str | None = cursor) -> SlackResponse:
                return self._client.conversations_history(
                    channel=channel, oldest=oldest, limit=HISTORY_PAGE,
                    include_all_metadata=True, cursor=at)

            try:
                response = self._call("conversations.history", page)
            except DeliveryError as exc:
                if exc.retryable:
                    raise DeliveryError(f"{exc.reason} (looking for an earlier post of "
                                        f"{message_id} before posting it again)",
                                        retryable=True, retry_after=exc.retry_after,
                                        status=exc.status) from exc
                log.warning("cannot look for an earlier post of %s in %s (%s); posting it "
                            "again", message_id, channel, exc.reason)
                return None
            for item in response.get("messages") or []:
                if isinstance(item, dict) and _carries(item, message_id):
                    return str(item.get("ts") or "")
            meta = response.get("response_metadata") or {}
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not response.get("has_more") or not cursor:
                break
        return None

    def blocks(self, message: Message) -> list[dict[str, Any]]:
        """The Block Kit blocks for `message`, at most 50."""
        blocks: list[dict[str, Any]] = [{
            "type": "header",
            "text": {"type": "plain_text", "text": self.headline(message), "emoji": True},
        }]
        if message.text.strip():
            blocks.append(_section(mrkdwn_escape(message.text.strip())))
        if message.kind == "digest" and message.alerts:
            blocks.append(_context(f"Digest of {len(message.alerts)} alerts"))
        tz = message.recipient.timezone
        for index, alert in enumerate(message.alerts):
            alert_blocks = alert_to_blocks(alert, tz)
            if index:
                alert_blocks.insert(0, {"type": "divider"})
            remaining = len(message.alerts) - index - 1
            room = MAX_BLOCKS - len(blocks) - (1 if remaining else 0)
            if len(alert_blocks) > room:
                blocks.append(_overflow(message.alerts[index:]))
                break
            blocks.extend(alert_blocks)
        return blocks

    def headline(self, message: Message) -> str:
        """The header text: the subject on one line, cut to Slack's 150 characters; Slack
        refuses an empty header, so a message without a subject gets a generic one."""
        return one_line(shown(message.subject), self.max_subject) or f"SIA {message.kind}"

    def _channel_for(self, address: str) -> str:
        address = address.strip()
        if not is_user_id(address):
            return address
        if address not in self._dm_channels:
            response = self._call("conversations.open",
                                  lambda: self._client.conversations_open(users=address))
            channel = response.get("channel") or {}
            if not isinstance(channel, dict) or not channel.get("id"):
                raise DeliveryError(f"Slack conversations.open gave no channel for {address}",
                                    retryable=True)
            self._dm_channels[address] = str(channel["id"])
        return self._dm_channels[address]

    @staticmethod
    def _call(method: str, call: Callable[[], SlackResponse]) -> SlackResponse:
        try:
            return call()
        except SlackApiError as exc:
            raise api_error(method, exc.response) from exc
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out
            # refused: never sent; reset, timed out, a broken answer: it may have been done
            raise DeliveryError(f"Slack {method}: {type(exc).__name__}: {exc}",
                                retryable=True,
                                maybe_delivered=not isinstance(exc, ConnectionRefusedError)
                                ) from exc
        except SlackClientError as exc:  # the request could not be built: will not improve
            raise DeliveryError(f"Slack {method}: {exc}", retryable=False) from exc

    def __repr__(self) -> str:
        return f"SlackNotifier({self.settings!r})"


def api_error(method: str, response: SlackResponse) -> DeliveryError:
    """The DeliveryError for a failed Slack answer: HTTP status first, then Slack's code."""
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or "unknown_error")
    where = f"Slack {method}"
    if status != 200:
        headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
        retry_after = headers.get("retry-after")
        if isinstance(retry_after, list):  # some transports give lists of values
            retry_after = retry_after[0] if retry_after else None
        error = error_for_status(status, code, None if retry_after is None else str(retry_after),
                                 where=where)
        if error is not None:
            error.maybe_delivered = status >= 500
            return error
    meta = data.get("response_metadata")
    details = (meta.get("messages") if isinstance(meta, dict) else None) or data.get("errors")
    details = details if isinstance(details, list) else []
    extra = f" ({one_line('; '.join(map(str, details)), 300)})" if details else ""
    return DeliveryError(f"{where}: {code}{extra}", retryable=code in RETRYABLE_ERRORS,
                         maybe_delivered=code in MAYBE_DONE_ERRORS)


def metadata_for(message: Message) -> dict[str, Any]:
    """The message metadata of a post: SIA's message id (what a retry looks for)."""
    return {"event_type": METADATA_EVENT,
            "event_payload": {"message_id": message.message_id, "kind": message.kind}}


def _carries(item: dict[str, Any], message_id: str) -> bool:
    meta = item.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != METADATA_EVENT:
        return False
    payload = meta.get("event_payload")
    return isinstance(payload, dict) and payload.get("message_id") == message_id


def is_user_id(address: str) -> bool:
    """True for a Slack user id (U... or W... on Enterprise Grid): messages go to its DM."""
    return re.fullmatch(r"[UW][A-Z0-9]{2,}", address) is not None


def alert_to_blocks(alert: AlertView, timezone: str) -> list[dict[str, Any]]:
    """Section, context and feedback buttons for one alert."""
    icon = SEVERITY_ICON.get(alert.severity, ":white_circle:")
    label = SEVERITY_LABEL.get(alert.severity, alert.severity.upper())
    text = (f"{icon} *{label}*  *{mrkdwn_escape(one_line(alert.title, 250))}*\n"
            f"{mrkdwn_escape(truncate(alert.explanation.strip(), 2000))}\n"
            f"*Suggested action:* {mrkdwn_escape(one_line(alert.action, 500))}")
    context = mrkdwn_escape(alert_context(alert, timezone))
    if alert.evidence:
        context += f" · evidence: {mrkdwn_escape(short_evidence(alert.evidence))}"
    buttons = [{
        "type": "button",
        "text": {"type": "plain_text", "text": label_text, "emoji": True},
        "action_id": action_id,
        "value": json.dumps({"alert_id": alert.alert_id, "verdict": verdict},
                            separators=(",", ":")),
        **({"style": "primary"} if verdict == "useful" else {}),
    } for label_text, verdict, action_id in FEEDBACK_BUTTONS]
    return [_section(text), _context(context), {"type": "actions", "elements": buttons}]


def mrkdwn_escape(text: str) -> str:
    """Text from data as mrkdwn that shows it literally: the three characters Slack reserves
    escaped (&, <, >), so "<!channel>", "<@U123>" or "<https://x|y>" in a customer's name
    are text, not a mention or a link; control characters and bidi overrides neutralised."""
    return shown(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(text, MAX_SECTION)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _fit(text, MAX_SECTION)}]}


def _overflow(rest: tuple[AlertView, ...]) -> dict[str, Any]:
    titles = "; ".join(one_line(a.title, 120) for a in rest)
    return _context(f"…and {len(rest)} more alert{'s' if len(rest) != 1 else ''}: "
                    f"{mrkdwn_escape(titles)}")


def _fit(escaped: str, limit: int) -> str:
    """Truncate already-escaped mrkdwn without leaving half an entity such as '&am'."""
    if len(escaped) <= limit:
        return escaped
    cut = truncate(escaped, limit)
    amp = cut.rfind("&", max(0, len(cut) - 6))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp].rstrip() + "…"
    return cut
