"""ConsoleNotifier and the plain-text rendering it shares with the other notifiers."""

from __future__ import annotations

import io
import sys

import pytest

from sia.notifiers.console import ConsoleNotifier, local_time, one_line, render_text, truncate

from .builders import alert_view, message


def test_prints_a_readable_block_per_alert() -> None:
    out = io.StringIO()
    receipt = ConsoleNotifier(out).send(message("group", 2))
    text = out.getvalue()
    assert receipt == "msg-group-2"
    assert "SIA group for Dana Reyes (rep rep-7)" in text
    assert "[MEDIUM] Acme 1 orders dropped 75%" in text and "[LOW] Acme 2" in text
    assert "4,820.50 of monthly" in text
    assert "Suggested action: Call the buyer" in text
    assert "Evidence: ev-1-0, ev-1-1, ev-1-2, ev-1-3, ev-1-4 (+2 more)" in text
    assert "Useful: https://sia.example.test/feedback/email?token=v1." in text


def test_never_fails_on_a_closed_stream() -> None:
    out = io.StringIO()
    out.close()
    assert ConsoleNotifier(out).send(message("notice")) == "msg-notice-1"


def test_defaults_to_stdout_and_accepts_stream_names(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleNotifier().send(message("notice"))
    assert "they are back on" in capsys.readouterr().out
    assert ConsoleNotifier("stderr").settings.stream is sys.stderr
    with pytest.raises(ValueError, match="stdout, stderr"):
        ConsoleNotifier("printer")


def test_render_text_without_links() -> None:
    msg = message("alert", alerts=(alert_view(1, evidence=()),))
    text = render_text(msg)
    assert "token=" not in text and "Evidence" not in text
    assert text.splitlines()[0] == "Acme 1 orders dropped 75%"
    assert "2024-03-01 09:31 CET" in text  # the rep's zone


def test_unknown_zone_falls_back_to_utc() -> None:
    moment = alert_view(1).occurred_at
    assert local_time(moment, "Mars/Olympus_Mons") == "2024-03-01 08:31 UTC"
    assert local_time(moment, "../etc/passwd") == "2024-03-01 08:31 UTC"


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("abc", 3, "abc"), ("abcd", 3, "ab…"), ("ab  cd", 4, "ab…"), ("x", 0, "")])
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= max(limit, 0)


def test_one_line_collapses_whitespace() -> None:
    assert one_line(" a\n b\t\tc ", 100) == "a b c"
