"""Configuration hardening (issue 18, "Secrets" and "Silent fallbacks in configuration"):
secrets never appear in errors, and a configuration that cannot mean what it says stops
SIA with the file and the key instead of running on defaults."""

from __future__ import annotations

import traceback

import pytest

# --- Secrets -------------------------------------------------------------------------------

REAL_LOOKING = "prod-changeme-2f9c1e77a0b4TAIL"  # holds a placeholder word, and a real tail


@pytest.mark.parametrize("name", ["feedback_secret", "slack_token", "slack_signing_secret",
                                  "smtp_password", "webhook_secret"])
def test_a_placeholder_secret_is_refused_naming_the_setting_only(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from sia.settings import Settings

    monkeypatch.setenv("SIA_ENVIRONMENT", "production")
    monkeypatch.setenv("SIA_FEEDBACK_SECRET", "a-real-feedback-key-0d5f3a9b8c7e")
    monkeypatch.setenv(f"SIA_{name.upper()}", REAL_LOOKING)
    with pytest.raises(Exception) as caught:  # any type, as long as it is quiet
        Settings(_env_file=None)  # type: ignore[call-arg]
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    errors = getattr(caught.value, "errors", None)
    if callable(errors):
        shown += repr(errors())
    # before: a pydantic ValidationError whose message showed "...e77a0b4TAIL" and whose
    # errors() held every secret in full
    assert "TAIL" not in shown and "2f9c1e77" not in shown
    assert f"SIA_{name.upper()}" in str(caught.value)


def test_a_secret_in_the_wrong_setting_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from sia.settings import Settings

    monkeypatch.setenv("SIA_MAX_ATTEMPTS", "xoxb-1234-real-token-TAIL")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "TAIL" not in str(caught.value) and "max_attempts" in str(caught.value)


def test_real_secrets_pass_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.settings import Settings

    monkeypatch.setenv("SIA_ENVIRONMENT", "production")
    monkeypatch.setenv("SIA_FEEDBACK_SECRET", "a-real-feedback-key-0d5f3a9b8c7e")
    assert Settings(_env_file=None).environment == "production"  # type: ignore[call-arg]
