"""SlackNotifier against a local fake of the Slack Web API (see slack_api.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sia.notifiers.base import DeliveryError
from sia.notifiers.slack import SlackNotifier, SlackSettings, is_user_id

from .builders import alert_view, message
from .slack_api import CHANNEL, TOKEN, USER, Failure, SlackAPI


@pytest.fixture
def slack(slack_api: SlackAPI) -> SlackNotifier:
    return SlackNotifier(TOKEN, base_url=slack_api.base_url, timeout=0.5)


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def send_error(notifier: SlackNotifier, address: str = CHANNEL) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(message("alert", address=address))
    return caught.value


def test_alert_posts_blocks_with_the_numbers_and_feedback_buttons(
        slack: SlackNotifier, slack_api: SlackAPI) -> None:
    ts = slack.send(message("alert", address=CHANNEL))
    assert ts == slack_api.history[CHANNEL][-1]["ts"] and re.fullmatch(r"\d{10}\.\d{6}", ts)
    [posted] = slack_api.posted()
    assert posted["channel"] == CHANNEL
    blocks = posted["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                    "text": "Acme 1 orders dropped 75%"}}
    section = blocks[1]["text"]["text"]
    for number in ("12.0", "3 times", "30 days", "4,820.50"):
        assert number in section
    assert "*MEDIUM*" in section and "*Suggested action:* Call the buyer" in section
    context = blocks[2]["elements"][0]["text"]
    assert "customer C0001" in context and "ev-1-0, ev-1-1" in context and "(+2 more)" in context
    assert "2024-03-01 09:31 CET" in context  # occurred_at in the rep's zone (Europe/Berlin)
    buttons = blocks[3]["elements"]
    assert [b["action_id"] for b in buttons] == ["sia_useful", "sia_not_useful", "sia_snooze"]
    assert [b["text"]["text"] for b in buttons] == ["Useful", "Not useful", "Snooze 7 days"]
    assert [json.loads(b["value"]) for b in buttons] == [
        {"alert_id": "al-0001", "verdict": v} for v in ("useful", "not_useful", "snooze_7d")]
    assert "4,820.50" in posted["text"]  # the notification fallback carries the numbers too
    assert posted["unfurl_links"] is False


def test_user_id_opens_a_dm_once_then_posts_there(slack: SlackNotifier,
                                                  slack_api: SlackAPI) -> None:
    slack.send(message("alert", address=USER))
    assert [c.method for c in slack_api.calls] == ["conversations.open", "chat.postMessage"]
    assert slack_api.calls[0].params["users"] == USER
    assert slack_api.posted()[0]["channel"] == "D" + USER[1:]
    slack.send(message("alert", address=USER))  # the DM channel is remembered
    assert [c.method for c in slack_api.calls][2:] == ["chat.postMessage"]


def test_token_is_sent_as_bearer(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack.send(message("alert", address=CHANNEL))
    assert slack_api.calls[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_wrong_token_is_permanent(slack_api: SlackAPI) -> None:
    notifier = SlackNotifier("xoxb-wrong", base_url=slack_api.base_url)
    error = send_error(notifier)
    assert not error.retryable and "invalid_auth" in error.reason


def test_group_lists_every_alert(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack.send(message("group", 3, address=CHANNEL))
    blocks = slack_api.posted()[0]["blocks"]
    assert [b["type"] for b in blocks] == ["header"] + ["section", "context", "actions"] + \
        ["divider", "section", "context", "actions"] * 2
    values = [json.loads(e["value"])["alert_id"] for b in blocks if b["type"] == "actions"
              for e in b["elements"]]
    assert sorted(set(values)) == ["al-0001", "al-0002", "al-0003"]


def test_large_digest_stays_within_50_blocks_and_summarises_the_rest(
        slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack.send(message("digest", 30, address=CHANNEL))
    blocks = slack_api.posted()[0]["blocks"]
    assert len(blocks) <= 50
    shown = sum(1 for b in blocks if b["type"] == "actions")
    last = blocks[-1]["elements"][0]["text"]
    assert last.startswith(f"…and {30 - shown} more alerts:")
    assert "Acme 30 orders dropped 75%" in last
    assert "Digest of 30 alerts" in all_text(blocks)


def test_notice_is_header_and_text(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack.send(message("notice", address=CHANNEL))
    blocks = slack_api.posted()[0]["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section"]
    assert "they are back on" in blocks[1]["text"]["text"]


def test_long_and_special_text_is_cut_and_escaped_not_refused(
        slack: SlackNotifier, slack_api: SlackAPI) -> None:
    long = alert_view(1, title="<b>R&D</b> " + "x" * 400,
                      explanation="Revenue fell <50%> & more. " * 400)
    slack.send(message("alert", address=CHANNEL, subject="S" * 400, alerts=(long,)))
    [posted] = slack_api.posted()  # the fake refuses blocks beyond Slack's limits
    header = posted["blocks"][0]["text"]["text"]
    assert len(header) == SlackNotifier.max_subject and header.endswith("…")
    section = posted["blocks"][1]["text"]["text"]
    assert len(section) <= 3000
    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in section and "<b>" not in section
    assert len(posted["text"]) <= SlackNotifier.max_body


def test_empty_subject_and_blank_text_still_make_valid_blocks(
        slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack.send(message("notice", address=CHANNEL, subject=" ", text="  \n "))
    assert [b["type"] for b in slack_api.posted()[0]["blocks"]] == ["header"]
    assert slack_api.posted()[0]["blocks"][0]["text"]["text"] == "SIA notice"
    assert slack_api.posted()[0]["text"] == "SIA notice"


def test_invalid_blocks_detail_is_in_the_reason(slack: SlackNotifier,
                                                slack_api: SlackAPI) -> None:
    slack_api.fail_next(Failure(200, {"ok": False, "error": "invalid_blocks",
                                      "response_metadata": {"messages": ["[ERROR] too long"]}}))
    error = send_error(slack)
    assert not error.retryable and error.reason.endswith("invalid_blocks ([ERROR] too long)")


def test_rate_limit_is_retryable_with_retry_after(slack: SlackNotifier,
                                                  slack_api: SlackAPI) -> None:
    slack_api.ratelimit_next(retry_after=17)
    error = send_error(slack)
    assert error.retryable and error.retry_after == 17.0 and error.status == 429
    assert len(slack_api.calls) == 1  # slack-sdk did not retry behind our back


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel", "invalid_auth",
                                  "account_inactive", "is_archived", "invalid_blocks"])
def test_ok_false_errors_are_permanent(slack: SlackNotifier, slack_api: SlackAPI,
                                       code: str) -> None:
    slack_api.error_next(code)
    error = send_error(slack)
    assert not error.retryable and code in error.reason


@pytest.mark.parametrize("code", ["ratelimited", "internal_error", "service_unavailable"])
def test_transient_ok_false_errors_are_retryable(slack: SlackNotifier, slack_api: SlackAPI,
                                                 code: str) -> None:
    slack_api.error_next(code)
    assert send_error(slack).retryable


def test_unknown_channel_is_permanent(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    error = send_error(slack, address="C0NOSUCH")
    assert not error.retryable and "channel_not_found" in error.reason


def test_unknown_user_is_permanent(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    error = send_error(slack, address="U0NOSUCH")
    assert not error.retryable and "user_not_found" in error.reason
    assert [c.method for c in slack_api.calls] == ["conversations.open"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable_and_not_retried(slack: SlackNotifier, slack_api: SlackAPI,
                                                     status: int) -> None:
    slack_api.server_error_next(status)
    error = send_error(slack)
    assert error.retryable and error.status == status
    assert len(slack_api.calls) == 1


def test_dropped_connection_is_retryable_and_not_retried(slack: SlackNotifier,
                                                         slack_api: SlackAPI) -> None:
    # slack-sdk's default ConnectionErrorRetryHandler would repeat this call once
    slack_api.drop_next()
    assert send_error(slack).retryable
    assert len(slack_api.calls) == 1


def test_timeout_is_retryable(slack_api: SlackAPI) -> None:
    notifier = SlackNotifier(TOKEN, base_url=slack_api.base_url, timeout=0.1)
    slack_api.stall_next()
    error = send_error(notifier)
    assert error.retryable and "timed out" in error.reason.lower()
    assert len(slack_api.calls) == 1


def test_refused_connection_is_retryable(closed_port: int) -> None:
    notifier = SlackNotifier(TOKEN, base_url=f"http://127.0.0.1:{closed_port}/api/", timeout=1)
    assert send_error(notifier).retryable


def test_a_failed_dm_open_is_classified_too(slack: SlackNotifier, slack_api: SlackAPI) -> None:
    slack_api.ratelimit_next(retry_after=3)
    error = send_error(slack, address=USER)
    assert error.retryable and error.retry_after == 3.0
    assert [c.method for c in slack_api.calls] == ["conversations.open"]


@pytest.mark.parametrize(("address", "is_user"), [
    ("U123", True), ("U0SIAREP1", True), ("W0SIAGRID", True), ("C0SIASALES", False),
    ("D0SIAREP1", False), ("#sales", False), ("sales", False), ("Updates", False)])
def test_user_ids_are_told_from_channels(address: str, is_user: bool) -> None:
    assert is_user_id(address) is is_user


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"token": ""}, "token is empty"), ({"token": "xoxb a"}, "whitespace"),
    ({"base_url": "ftp://x"}, "base_url"), ({"timeout": 0}, "timeout"),
    ({"timeout": True}, "timeout")])
def test_settings_are_validated(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        SlackSettings(**{"token": TOKEN, **changes})


def test_repr_hides_the_token(slack: SlackNotifier) -> None:
    assert TOKEN not in repr(slack) and "base_url" in repr(slack)
