"""Configuration hardening (issue 18, "Secrets" and "Silent fallbacks in configuration"):
secrets never appear in errors, and a configuration that cannot mean what it says stops
SIA with the file and the key instead of running on defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

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


# --- Silent fallbacks: a path given must exist; zero detectors is an error ------------------

EVENT = ('{"type": "customer", "event_id": "c-1", "occurred_at": "2024-03-01T09:00:00+00:00",'
         ' "customer_id": "C1", "name": "Acme"}\n')


def sia(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from sia.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(EVENT, encoding="utf-8")
    return path


def test_an_explicit_detectors_file_that_does_not_exist_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.config import ConfigError
    from sia.detectors.config import load_detectors

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"nosuch\.yaml: no such file"):
        load_detectors(tmp_path / "nosuch.yaml")
    # before: exit 0, every detector on its defaults
    code, text = sia("replay", str(events_file(tmp_path)), "--db", str(tmp_path / "a.db"),
                     "--config", str(tmp_path / "nosuch.yaml"))
    assert code != 0 and "nosuch.yaml: no such file" in text.replace("\n", "")
    assert len(load_detectors()) == 8  # the default file, or its absence, still works


def test_an_explicit_policy_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    from sia.config import ConfigError
    from sia.policy import PolicyConfig, load_policy

    with pytest.raises(ConfigError, match=r"nosuch\.yaml: no such file"):
        load_policy(tmp_path / "nosuch.yaml", required=True)
    # the default, and an absent policy of a published configuration, still mean defaults
    assert load_policy(tmp_path / "absent.yaml") == PolicyConfig()


def test_sia_replay_with_a_policy_file_that_does_not_exist_stops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = sia("replay", str(events_file(tmp_path)), "--db", str(tmp_path / "a.db"),
                     "--policy-file", str(tmp_path / "nosuch.yaml"))
    assert code != 0 and "nosuch.yaml: no such file" in text.replace("\n", "")


@pytest.mark.parametrize(("text", "complaint"), [
    ("enabled:\ndetectors: {drift: {}}\n", "enabled: lists no detector"),
    ("enabled: []\ndetectors: {drift: {}}\n", "enabled: lists no detector"),
    ("detectors: {}\n", "configures no detector"),
    ("", "configures no detector")])
def test_a_configuration_of_zero_detectors_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, complaint: str) -> None:
    from sia.config import ConfigError
    from sia.detectors.config import load_detectors

    path = tmp_path / "detectors.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=complaint):  # before: [] (or, for "enabled:",
        load_detectors(path)  # "must be a list"), and a run that finds nothing, exit 0
    monkeypatch.chdir(tmp_path)
    code, output = sia("replay", str(events_file(tmp_path)), "--db", str(tmp_path / "a.db"),
                       "--config", str(path))
    assert code != 0 and complaint in output.replace("\n", "")


def test_asking_for_a_detector_that_is_not_enabled_is_an_error(tmp_path: Path) -> None:
    from sia.config import ConfigError
    from sia.detectors.config import load_detectors

    path = tmp_path / "detectors.yaml"
    path.write_text("enabled: [drift]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'drift'"):
        load_detectors(path, only=["drfit"])
    with pytest.raises(ConfigError, match="none of trend is enabled"):
        load_detectors(path, only=["trend"])


# --- Detector names in policy, inhibition and routing are checked ---------------------------

@pytest.mark.parametrize(("text", "where"), [
    ("min_score: {drfit: 0.5}\n", "min_score.drfit: unknown detector 'drfit'; did you mean "
                                  "'drift'?"),
    ("cooldown_days: {default: 30, cros_sell: 90}\n", "cooldown_days.cros_sell: unknown "
                                                      "detector 'cros_sell'; did you mean "
                                                      "'cross_sell'?"),
    ("inhibit: [{source: drfit, targets: [up_sell]}]\n", "inhibit[0].source: unknown detector"),
    ("inhibit: [{source: drift, targets: [up_sell, upsell]}]\n",
     "inhibit[0].targets[1]: unknown detector 'upsell'; did you mean 'up_sell'?")])
def test_policy_names_only_registered_detectors(tmp_path: Path, text: str, where: str) -> None:
    from sia.config import ConfigError
    from sia.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:  # before: accepted, and never applied
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: {where}")


def test_default_stays_allowed_in_policy(tmp_path: Path) -> None:
    from sia.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("min_score: {default: 0.1}\ncooldown_days: {default: 10, drift: 5}\n")
    config = load_policy(path)
    assert config.min_score_for("trend") == 0.1 and config.cooldown_for("drift").days == 5


ROUTES = """\
receivers:
  ops: {kind: console}
route:
  receivers: [ops]
  routes:
    - match: {detector: [performance, drfit]}
"""


def test_routing_matchers_name_only_registered_detectors(tmp_path: Path) -> None:
    from sia.config import ConfigError
    from sia.routing import load_routes

    path = tmp_path / "routing.yaml"
    path.write_text(ROUTES, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:  # before: accepted, and never matched
        load_routes(path)
    assert str(caught.value).startswith(
        f"{path}: route.routes[0].match.detector[1]: unknown detector 'drfit'; did you "
        "mean 'drift'?")
    path.write_text(ROUTES.replace(", drfit", ""), encoding="utf-8")
    assert load_routes(path).routes[0].matcher.values == (("detector", ("performance",)),)


# --- A routing tree with a YAML alias loop ---------------------------------------------------

LOOP = """\
receivers:
  ops: {kind: console}
route: &root
  receivers: [ops]
  routes:
    - *root
"""


def fan_out(levels: int = 5, width: int = 8) -> str:
    """A route tree whose every route lists the one below `width` times through YAML
    aliases: a small file, width**levels routes."""
    def node(level: int) -> str:
        if level == 0:
            return "&l0 {match: {severity: low}}"
        refs = ", ".join([f"*l{level - 1}"] * (width - 1))
        return (f"&l{level} {{match: {{severity: low}}, "
                f"routes: [{node(level - 1)}, {refs}]}}")

    return ("receivers:\n  ops: {kind: console}\nroute:\n  receivers: [ops]\n"
            f"  routes: [{node(levels)}]\n")


def test_a_routing_alias_loop_is_a_config_error_naming_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.config import ConfigError
    from sia.routing import load_routes

    path = tmp_path / "routing.yaml"
    path.write_text(LOOP, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:  # before: RecursionError
        load_routes(path)
    assert str(caught.value).startswith(f"{path}: route.routes[0]: refers back")
    alert = tmp_path / "alert.json"
    alert.write_text('{"detector": "drift", "kind": "overdue", "severity": "high", '
                     '"subject_kind": "customer", "subject_id": "C1"}')
    code, text = sia("routes", "test", str(alert), "--routes", str(path))
    assert code == 2 and "alias loop" in text.replace("\n", "")
    monkeypatch.chdir(tmp_path)
    code, text = sia("deliver", "--db", str(tmp_path / "a.db"), "--routes", str(path))
    assert code == 2 and "alias loop" in text.replace("\n", "")


def test_aliases_that_fan_out_are_refused_not_walked(tmp_path: Path) -> None:
    from sia.config import ConfigError
    from sia.routing import load_routes

    path = tmp_path / "routing.yaml"
    path.write_text(fan_out(), encoding="utf-8")
    with pytest.raises(ConfigError, match="more than 2000 routes"):  # before: 37,450 built
        load_routes(path)
    path.write_text(fan_out(levels=2, width=3), encoding="utf-8")
    assert len(list(load_routes(path).walk())) == 1 + 1 + 3 + 9  # a few aliases are fine


def test_a_crash_prints_no_local_variables(tmp_path: Path) -> None:
    # typer's pretty tracebacks once printed every frame's locals, and a crash in
    # `sia deliver` printed the feedback secret held in one of them
    script = tmp_path / "crash.py"
    script.write_text(
        "from sia.cli import app\n\n\n"
        "@app.command('boom')\n"
        "def boom() -> None:\n"
        "    secret = 'never' + '-printed-' + 'value'\n"
        "    raise RuntimeError('boom ' + str(len(secret)))\n\n\n"
        "app(['boom'])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("_TYPER")}
    env["COLUMNS"] = "200"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr and "boom 19" in done.stderr
    assert "never-printed-value" not in done.stdout + done.stderr
