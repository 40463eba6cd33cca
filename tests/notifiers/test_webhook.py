"""WebhookNotifier against a local HTTP receiver that verifies the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from typing import Any

import pytest

from sia.notifiers.base import DeliveryError
from sia.notifiers.webhook import (
    WebhookNotifier,
    WebhookSettings,
    retry_after_seconds,
    verify_signature,
)

from .builders import alert_view, message
from .servers import WEBHOOK_SECRET, WebhookReceiver


@pytest.fixture(scope="module")
def hook() -> Any:
    notifier = WebhookNotifier(WEBHOOK_SECRET, timeout=2, headers={"Authorization": "Bearer k"})
    yield notifier
    notifier.close()


def send_error(notifier: WebhookNotifier, url: str) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(message("alert", address=url, channel="webhook"))
    return caught.value


def test_valid_signature_is_accepted(hook: WebhookNotifier, receiver: WebhookReceiver) -> None:
    receipt = hook.send(message("alert", address=receiver.url, channel="webhook"))
    [got] = receiver.received
    assert got.verified and receipt == "req-1"
    assert got.path == "/hooks/sia"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["idempotency-key"] == "msg-alert-1"
    assert got.headers["authorization"] == "Bearer k"  # extra headers from the settings
    assert abs(int(got.headers["x-sia-timestamp"]) - time.time()) < 5
    expected = hmac.new(WEBHOOK_SECRET, got.headers["x-sia-timestamp"].encode() + b"."
                        + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-sia-signature"] == f"v1={expected}"


def test_body_is_the_documented_json(hook: WebhookNotifier, receiver: WebhookReceiver) -> None:
    hook.send(message("group", 3, address=receiver.url, channel="webhook"))
    body = receiver.received[0].json()
    assert set(body) == {"message_id", "kind", "subject", "recipient", "alerts", "text"}
    assert body["kind"] == "group" and body["message_id"] == "msg-group-3"
    assert body["recipient"] == {"name": "Dana Reyes", "rep_id": "rep-7"}
    assert len(body["alerts"]) == 3
    first = body["alerts"][0]
    assert first == {
        "alert_id": "al-0001", "detector": "drift", "kind": "value_erosion",
        "severity": "medium", "title": "Acme 1 orders dropped 75%",
        "explanation": alert_view(1).explanation,
        "action": "Call the buyer this week and ask about the last order.",
        "subject_kind": "customer", "subject_id": "C0001",
        "occurred_at": "2024-03-01T08:31:00+00:00", "value": 4820.5,
        "evidence": [f"ev-1-{n}" for n in range(7)],
        "facts": {"orders_per_month": 12.0, "orders_last_30d": 3, "revenue_at_risk": 4820.5}}


def test_unusual_facts_still_serialise(hook: WebhookNotifier, receiver: WebhookReceiver) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    odd = alert_view(1, facts={"when": datetime(2024, 1, 1, tzinfo=UTC),
                               "amount": Decimal("1.10"), "tags": {"a"}})
    hook.send(message("alert", address=receiver.url, channel="webhook", alerts=(odd,)))
    facts = receiver.received[0].json()["alerts"][0]["facts"]
    assert facts == {"when": "2024-01-01T00:00:00+00:00", "amount": "1.10", "tags": ["a"]}


def test_wrong_secret_is_refused_by_the_receiver(receiver: WebhookReceiver) -> None:
    notifier = WebhookNotifier(b"some-other-secret", timeout=2)
    error = send_error(notifier, receiver.url)
    assert not receiver.received[0].verified
    assert not error.retryable and error.status == 401


def test_429_is_retryable_with_retry_after(hook: WebhookNotifier,
                                           receiver: WebhookReceiver) -> None:
    receiver.reply_next(429, {"Retry-After": "42"}, "slow down")
    error = send_error(hook, receiver.url)
    assert error.retryable and error.retry_after == 42.0 and error.status == 429
    assert len(receiver.received) == 1


def test_retry_after_as_http_date(hook: WebhookNotifier, receiver: WebhookReceiver) -> None:
    from email.utils import formatdate

    receiver.reply_next(503, {"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    error = send_error(hook, receiver.url)
    assert error.retryable and error.retry_after is not None and 100 < error.retry_after <= 121


@pytest.mark.parametrize(("status", "retryable"), [
    (400, False), (404, False), (410, False), (408, True), (500, True), (503, True),
    (301, False)])
def test_status_mapping(hook: WebhookNotifier, receiver: WebhookReceiver, status: int,
                        retryable: bool) -> None:
    receiver.reply_next(status, {"Location": "http://127.0.0.1:1/elsewhere"}, "nope")
    error = send_error(hook, receiver.url)
    assert error.retryable is retryable and error.status == status
    assert len(receiver.received) == 1  # one POST, no redirect followed, no retry


def test_receiver_down_is_retryable(hook: WebhookNotifier, closed_port: int) -> None:
    error = send_error(hook, f"http://127.0.0.1:{closed_port}/hook")
    assert error.retryable and error.status is None


def test_silent_receiver_times_out_retryably() -> None:
    notifier = WebhookNotifier(WEBHOOK_SECRET, timeout=0.1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        error = send_error(notifier, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
    assert error.retryable and "Timeout" in error.reason
    notifier.close()


@pytest.mark.parametrize("address", ["ftp://example.test/x", "not a url", "-", "http://"])
def test_bad_address_is_permanent(hook: WebhookNotifier, address: str) -> None:
    assert not send_error(hook, address).retryable


def test_idempotency_key_equals_message_id_on_every_attempt(
        hook: WebhookNotifier, receiver: WebhookReceiver) -> None:
    receiver.reply_next(503)
    msg = message("digest", 4, address=receiver.url, channel="webhook", message_id="dig-2024-03")
    with pytest.raises(DeliveryError):
        hook.send(msg)
    hook.send(msg)
    keys = [r.headers["idempotency-key"] for r in receiver.received]
    bodies = [json.loads(r.body) for r in receiver.received]
    assert keys == ["dig-2024-03", "dig-2024-03"] and bodies[0] == bodies[1]


def test_verify_signature() -> None:
    body, now = b'{"message_id":"m"}', 1_709_280_000
    mac = hmac.new(b"k", b"1709280000." + body, hashlib.sha256).hexdigest()
    good = f"v1={mac}"
    assert verify_signature(b"k", "1709280000", body, good, now=now)
    assert verify_signature(b"k", 1709280000, body.decode(), good, now=now + 300)
    assert verify_signature(b"k", "1709280000", body, f"v1={'0' * 64}, {good}", now=now)
    assert not verify_signature(b"k", "1709280000", body, good, now=now + 301)  # stale
    assert not verify_signature(b"k", "1709280000", body, good, now=now - 301)  # future
    assert not verify_signature(b"other", "1709280000", body, good, now=now)
    assert not verify_signature(b"k", "1709280000", body + b" ", good, now=now)
    assert not verify_signature(b"k", "1709280001", body, good, now=now)
    assert not verify_signature(b"k", "soon", body, good, now=now)
    assert not verify_signature(b"k", "١٧٠٩٢٨٠٠٠٠", body, good, now=now)  # non-ASCII digits
    assert not verify_signature(b"k", "1709280000", body, mac, now=now)  # no version prefix
    assert not verify_signature(b"k", "1709280000", body, "", now=now)


def test_retry_after_seconds() -> None:
    assert retry_after_seconds(None, now=0) is None
    assert retry_after_seconds("7", now=0) == "7"
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:00 GMT", now=0) == "60.0"
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:00 GMT", now=100) == "0.0"
    assert retry_after_seconds("whenever", now=0) is None


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"secret": b""}, "secret"), ({"timeout": 0}, "timeout"),
    ({"headers": {"X-SIA-Signature": "x"}}, "set by SIA"),
    ({"headers": {"X-Api-Key": "a\r\nb"}}, "line break")])
def test_settings_are_validated(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        WebhookSettings(**{"secret": WEBHOOK_SECRET, **changes})


def test_repr_hides_secret_and_headers(hook: WebhookNotifier) -> None:
    text = repr(hook)
    assert WEBHOOK_SECRET.decode() not in text and "Bearer k" not in text
