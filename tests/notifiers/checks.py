"""Contract checks every notifier must pass, in the manner of river's estimator checks.

Each check takes a `Harness`: a notifier built through the registry from plain settings,
pointed at a real local receiver (fake Slack API, aiosmtpd, HTTP receiver, a text buffer),
plus ways to read what that receiver got. `test_contract.py` runs every check on every
registered channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from sia.notifiers.base import DeliveryError, Notifier

from .builders import message


@dataclass
class Harness:
    """A notifier and its local receiver."""

    channel: str
    notifier: Notifier
    address: str
    deliveries: Callable[[], int]  # how many messages the receiver has accepted
    last_subject: Callable[[], str]  # the subject as the receiver shows it
    break_next: Callable[[], None] | None = None  # make the next delivery fail transiently
    secrets: list[str] = field(default_factory=list)  # must never appear in repr


def _send(h: Harness, kind: str, n: int = 1, **changes: object) -> str:
    before = h.deliveries()
    receipt = h.notifier.send(message(kind, n, address=h.address,  # type: ignore[arg-type]
                                      channel=h.channel, **changes))  # type: ignore[arg-type]
    assert isinstance(receipt, str)
    assert h.deliveries() == before + 1, "one send must make exactly one delivery"
    return receipt


def check_declares_channel_and_limits(h: Harness) -> None:
    assert isinstance(h.notifier, Notifier)
    assert h.notifier.channel == h.channel
    assert 0 < h.notifier.max_subject <= h.notifier.max_body


def check_sends_one_alert(h: Harness) -> None:
    _send(h, "alert")
    assert h.last_subject() == "Acme 1 orders dropped 75%"


def check_sends_a_group_of_three(h: Harness) -> None:
    _send(h, "group", 3)
    assert h.last_subject() == "3 alerts for Acme"


def check_sends_a_digest(h: Harness) -> None:
    _send(h, "digest", 12)
    assert h.last_subject() == "Your SIA digest: 12 alerts"


def check_sends_a_notice(h: Harness) -> None:
    _send(h, "notice")
    assert h.last_subject() == "Your snooze of customer C0001 ended"


def check_cuts_a_long_subject(h: Harness) -> None:
    limit = h.notifier.max_subject
    _send(h, "alert", subject="Revenue at risk:\n" + "x" * (5 * limit))
    subject = h.last_subject()
    assert len(subject) <= limit and subject.endswith("…") and "\n" not in subject
    assert subject.startswith("Revenue at risk: x")


def check_fits_a_huge_explanation(h: Harness) -> None:
    from .builders import alert_view

    huge = alert_view(1, explanation="Revenue fell 12.5% & more. " * 4_000)
    _send(h, "alert", alerts=(huge,))


def check_failure_is_a_typed_delivery_error(h: Harness) -> None:
    if h.break_next is None:
        pytest.skip(f"{h.channel} cannot fail")
    h.break_next()
    with pytest.raises(DeliveryError) as caught:
        h.notifier.send(message("alert", address=h.address, channel=h.channel))
    assert caught.value.retryable and caught.value.reason
    _send(h, "alert")  # and the next send goes through


def check_repr_hides_secrets(h: Harness) -> None:
    text = repr(h.notifier)
    assert text.startswith(type(h.notifier).__name__)
    for secret in h.secrets:
        assert secret not in text


def check_close_is_safe_and_reconnects(h: Harness) -> None:
    h.notifier.close()
    h.notifier.close()
    _send(h, "alert")  # a closed notifier reconnects on demand


CHECKS: list[Callable[[Harness], None]] = [
    check_declares_channel_and_limits,
    check_sends_one_alert,
    check_sends_a_group_of_three,
    check_sends_a_digest,
    check_sends_a_notice,
    check_cuts_a_long_subject,
    check_fits_a_huge_explanation,
    check_failure_is_a_typed_delivery_error,
    check_repr_hides_secrets,
    check_close_is_safe_and_reconnects,
]
