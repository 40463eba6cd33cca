"""Build a notifier by channel name from a plain mapping of settings.

One table maps each channel to its notifier and settings dataclass; one function checks a
mapping against the dataclass's fields (unknown keys, missing required keys), converts
string values from environment variables or YAML (numbers, booleans, bytes) and unwraps
pydantic `SecretStr` values, then calls the notifier's constructor. Errors name the channel
and the setting, never a secret's value.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from sia.config import ConfigError
from sia.notifiers.base import Notifier
from sia.notifiers.console import ConsoleNotifier, ConsoleSettings
from sia.notifiers.email import EmailNotifier, EmailSettings
from sia.notifiers.slack import SlackNotifier, SlackSettings
from sia.notifiers.webhook import WebhookNotifier, WebhookSettings

NOTIFIERS: dict[str, tuple[type[Notifier], type[Any]]] = {
    "console": (ConsoleNotifier, ConsoleSettings),
    "email": (EmailNotifier, EmailSettings),
    "slack": (SlackNotifier, SlackSettings),
    "webhook": (WebhookNotifier, WebhookSettings),
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class NotifierSettingsError(ConfigError):
    """Settings that cannot build a notifier: unknown channel, missing or invalid setting
    (a ConfigError, and so a ValueError: commands stop with the message, no traceback)."""


def channels() -> list[str]:
    """The channel names `build_notifier` knows."""
    return sorted(NOTIFIERS)


def build_notifier(channel: str, settings: Mapping[str, Any]) -> Notifier:
    """A ready notifier for `channel`, configured from `settings` (keys = settings fields)."""
    try:
        notifier_type, settings_type = NOTIFIERS[channel]
    except KeyError:
        raise NotifierSettingsError(
            f"unknown notifier channel {channel!r}; known: {', '.join(channels())}") from None
    if not isinstance(settings, Mapping):
        raise NotifierSettingsError(f"{channel} notifier settings must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(settings_type)}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise NotifierSettingsError(
            f"{channel} notifier: unknown setting(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if name not in settings
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise NotifierSettingsError(
            f"{channel} notifier: missing required setting(s) {', '.join(missing)}")
    hints = typing.get_type_hints(settings_type)
    kwargs = {name: _coerce(channel, name, hints[name], value)
              for name, value in settings.items()}
    try:
        return notifier_type(**kwargs)
    except (ValueError, TypeError) as exc:
        raise NotifierSettingsError(f"{channel} notifier: {exc}") from None


def _coerce(channel: str, name: str, hint: Any, value: Any) -> Any:
    """String forms of numbers, booleans and bytes turned into the field's type."""
    if callable(getattr(value, "get_secret_value", None)):  # pydantic SecretStr / SecretBytes
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    target = _plain(hint)
    if target is bool:
        lowered = value.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
    elif target is bytes:
        return value.encode("utf-8")
    elif target in (int, float):
        try:
            return target(value.strip())
        except ValueError:
            pass
    else:
        return value
    raise NotifierSettingsError(
        f"{channel} notifier: setting {name} must be {target.__name__}, got {value!r}")


def _plain(hint: Any) -> Any:
    """The one non-None type of an Optional hint (`str | None` -> str), else the hint."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint
