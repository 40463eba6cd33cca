"""Named receivers of routing.yaml: who a route sends to, resolved per alert later.

A receiver is declared once under `receivers:` and referred to by name from routes
(as in Alertmanager). Person kinds (`owner_rep`, `manager`, `rep`) and `team_channel`
are resolved from the alert and the reference data; the fixed kinds (`slack_channel`,
`email`, `webhook`, `console`) always reach the same place. Webhook secrets do not
belong here: they are settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args

from sia.config import ConfigError

ReceiverKind = Literal["owner_rep", "manager", "rep", "team_channel", "slack_channel", "email",
                       "webhook", "console"]
KINDS: tuple[str, ...] = get_args(ReceiverKind)
PERSON_KINDS = frozenset({"owner_rep", "manager", "rep"})
_TARGET_KEY = {"slack_channel": "channel", "email": "address", "webhook": "url"}
_SECRET_KEYS = frozenset({"secret", "token", "password", "signing_secret", "api_key"})


@dataclass(frozen=True)
class TeamChannels:
    """A Slack channel per team, and the `default` channel for teams not listed."""

    default: str
    by_team: tuple[tuple[str, str], ...] = ()

    def channel_for(self, team: str | None) -> str | None:
        """The team's own channel; None when the team is unknown or not listed."""
        return dict(self.by_team).get(team) if team is not None else None


@dataclass(frozen=True)
class Receiver:
    """One named receiver: its kind and, for the fixed kinds, the channel, address or URL."""

    name: str
    kind: ReceiverKind
    target: str = ""
    team_channels: TeamChannels = TeamChannels(default="")

    def __str__(self) -> str:
        return self.name if self.name == self.kind else f"{self.name} ({self.kind})"


def _fail(path: Path, where: str, message: str) -> NoReturn:
    raise ConfigError(f"{path}: {where}: {message}")


def parse_team_channels(raw: Any, path: Path) -> TeamChannels | None:
    """The `team_channels:` section: {team: channel}, with a required `default`."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        _fail(path, "team_channels", "must be a mapping of team to Slack channel")
    for team, channel in raw.items():
        if not isinstance(channel, str) or not channel.strip():
            _fail(path, f"team_channels.{team}", f"must be a Slack channel, got {channel!r}")
    if "default" not in raw:
        _fail(path, "team_channels.default",
              "required: the channel for teams not listed and alerts without a team")
    return TeamChannels(default=raw["default"].strip(), by_team=tuple(
        (str(team), channel.strip()) for team, channel in raw.items() if team != "default"))


def parse_receivers(raw: Any, channels: TeamChannels | None,
                    path: Path) -> dict[str, Receiver]:
    """The `receivers:` section: {name: {kind: ..., channel|address|url: ...}}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        _fail(path, "receivers", "must be a mapping of receiver name to {kind: ...}")
    receivers = {}
    for name, spec in raw.items():
        where = f"receivers.{name}"
        if not isinstance(spec, dict):
            _fail(path, where, "must be a mapping with a kind, e.g. {kind: owner_rep}")
        kind = spec.get("kind")
        if kind not in KINDS:
            _fail(path, f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        target_key = _TARGET_KEY.get(kind)
        known = {"kind"} | ({target_key} if target_key else set())
        for key in spec:
            if key in _SECRET_KEYS:
                _fail(path, f"{where}.{key}", "secrets do not belong in routing.yaml; "
                      "set them in the settings (environment)")
            if key not in known:
                _fail(path, f"{where}.{key}",
                      f"unknown key for kind {kind}; known: {', '.join(sorted(known))}")
        target = ""
        if target_key:
            target = _target(spec.get(target_key), kind, path, f"{where}.{target_key}")
        if (kind in PERSON_KINDS or kind == "team_channel") and channels is None:
            _fail(path, "team_channels.default", f"required: receiver {name} ({kind}) "
                  "falls back to a team channel")
        receivers[str(name)] = Receiver(str(name), kind, target,
                                        channels or TeamChannels(default=""))
    return receivers


def _target(value: Any, kind: str, path: Path, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(path, where, f"required for kind {kind}, got {value!r}")
    target = str(value).strip()
    if kind == "email" and ("@" not in target or " " in target):
        _fail(path, where, f"{target!r} is not an email address")
    if kind == "webhook" and not target.startswith(("https://", "http://")):
        _fail(path, where, f"{target!r} is not an http(s) URL")
    return target


def receiver_names(receivers: Mapping[str, Receiver]) -> str:
    """Defined names, for error messages."""
    return ", ".join(sorted(receivers)) or "(none)"
