"""Notifier hardening (issue 18): what a receiver answers cannot crash or park delivery,
a Slack post that may have gone through is not posted twice, SMTP does not hand a password
over plain text, and text from CRM data cannot inject markup or mentions.

Real servers: the webhook receiver and aiosmtpd of tests/notifiers/servers.py, the Slack
Web API stand-in of tests/notifiers/slack_api.py.
"""

from __future__ import annotations

import math
import time
from email.utils import formatdate

import pytest
from notifiers.builders import message  # type: ignore[import-not-found]
from notifiers.servers import (  # type: ignore[import-not-found]
    WEBHOOK_SECRET,
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
