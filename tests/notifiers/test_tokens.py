"""Signed, expiring feedback tokens (sia/notifiers/tokens.py)."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from sia.notifiers.tokens import (
    FeedbackClaim,
    InvalidToken,
    feedback_links,
    make_token,
    read_token,
)

SECRET = b"0123456789abcdef-feedback"
NOW = 1_709_280_000


def reason(secret: bytes, token: str, now: int = NOW) -> str:
    with pytest.raises(InvalidToken) as caught:
        read_token(secret, token, now)
    return caught.value.reason


@pytest.mark.parametrize("verdict", ["useful", "not_useful", "snooze_7d"])
@pytest.mark.parametrize("rep_id", ["rep-7", None, "rép ünïcode"])
def test_round_trip(verdict: str, rep_id: str | None) -> None:
    token = make_token(SECRET, "al-0001", verdict, rep_id, NOW + 60)
    assert read_token(SECRET, token, NOW) == FeedbackClaim("al-0001", verdict, rep_id, NOW + 60)


def test_token_is_url_safe_and_compact() -> None:
    token = make_token(SECRET, "al-0001", "not_useful", "rep-7", NOW + 14 * 86_400)
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", token)
    assert len(token) < 120


def test_tampered_payload_is_refused() -> None:
    token = make_token(SECRET, "al-0001", "useful", "rep-7", NOW + 60)
    version, payload, tag = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["v"] = "snooze_7d"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert reason(SECRET, f"{version}.{forged}.{tag}") == "bad_signature"


def test_tampered_signature_is_refused() -> None:
    token = make_token(SECRET, "al-0001", "useful", "rep-7", NOW + 60)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert reason(SECRET, flipped) == "bad_signature"


def test_wrong_secret_is_refused() -> None:
    token = make_token(SECRET, "al-0001", "useful", "rep-7", NOW + 60)
    assert reason(b"another-secret-of-16+bytes", token) == "bad_signature"


def test_expired_is_refused_from_the_expiry_second_on() -> None:
    token = make_token(SECRET, "al-0001", "useful", "rep-7", NOW + 60)
    assert read_token(SECRET, token, NOW + 59).alert_id == "al-0001"
    assert reason(SECRET, token, NOW + 60) == "expired"
    assert reason(SECRET, token, NOW + 10**6) == "expired"


@pytest.mark.parametrize("token", [
    "", "v1", "v1..", "v2.abc.def", "v1.abc", "v1.a.b.c", "v1.@@@.AAAA", "v1.abc.@@@",
    "v1.abc.A", "v1." + "A" * 3000 + ".AAAA", "garbage with spaces"])
def test_malformed_is_refused(token: str) -> None:
    assert reason(SECRET, token) == "malformed"


def test_signed_but_wrong_shape_is_malformed() -> None:
    # a payload that carries a valid tag but is not a claim (only a secret holder can make it)
    import hashlib
    import hmac

    payload = base64.urlsafe_b64encode(b'["not", "a", "claim"]').rstrip(b"=").decode()
    tag = hmac.new(SECRET, b"sia-feedback.v1." + payload.encode(), hashlib.sha256).digest()[:16]
    token = f"v1.{payload}.{base64.urlsafe_b64encode(tag).rstrip(b'=').decode()}"
    assert reason(SECRET, token) == "malformed"


def test_make_token_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="verdict"):
        make_token(SECRET, "al-1", "love_it", None, NOW)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        make_token(b"short", "al-1", "useful", None, NOW)
    with pytest.raises(ValueError, match="alert_id"):
        make_token(SECRET, "", "useful", None, NOW)


def test_feedback_links() -> None:
    links = feedback_links("https://sia.example.test/", SECRET, "al-9", "rep-1", NOW)
    urls = {"useful": links.useful, "not_useful": links.not_useful, "snooze_7d": links.snooze}
    for verdict, url in urls.items():
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == \
            "https://sia.example.test/feedback/email"
        claim = read_token(SECRET, parse_qs(parts.query)["token"][0], NOW)
        assert (claim.alert_id, claim.verdict, claim.rep_id) == ("al-9", verdict, "rep-1")
        assert claim.expires_at == NOW + 14 * 86_400
    with pytest.raises(ValueError):
        feedback_links("sia.example.test", SECRET, "al-9", None, NOW)
    with pytest.raises(ValueError):
        feedback_links("https://sia.example.test", SECRET, "al-9", None, NOW, ttl_days=0)
