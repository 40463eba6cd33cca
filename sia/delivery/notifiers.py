"""Notifiers from settings, and redirection of every recipient to one destination."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sia.alerts.store import AlertRecord
from sia.catalog import Catalog
from sia.delivery.dispatcher import Routed
from sia.delivery.service import RoutedAlert
from sia.notifiers.base import Notifier, Recipient
from sia.notifiers.registry import build_notifier
from sia.settings import Settings


def notifiers_from(settings: Settings) -> dict[str, Notifier]:
    """Every notifier the settings configure; console always."""
    out: dict[str, Notifier] = {"console": build_notifier("console", {})}
    if settings.slack_token is not None:
        out["slack"] = build_notifier("slack", {"token": settings.slack_token,
                                                "base_url": settings.slack_base_url})
    if settings.smtp_host:
        # implicit TLS listens on 465 unless a port is given
        port = 465 if settings.smtp_ssl and "smtp_port" not in settings.model_fields_set \
            else settings.smtp_port
        out["email"] = build_notifier("email", {
            "host": settings.smtp_host, "port": port,
            "sender": settings.smtp_sender, "username": settings.smtp_username,
            "password": settings.smtp_password, "starttls": settings.smtp_starttls,
            "ssl": settings.smtp_ssl, "cafile": settings.smtp_ca_file,
            "allow_plaintext_auth": settings.smtp_allow_plaintext_auth})
    if settings.webhook_secret is not None:
        out["webhook"] = build_notifier("webhook", {"secret": settings.webhook_secret})
    return out


def destination(settings: Settings) -> Recipient:
    """The one place the demo delivers to: the configured channel, else the console."""
    channel = settings.channel()
    address = {"slack": settings.slack_channel, "email": settings.email_to,
               "webhook": settings.webhook_url, "console": "-"}[channel]
    if not address:
        need = {"slack": "SIA_SLACK_CHANNEL", "email": "SIA_EMAIL_TO",
                "webhook": "SIA_WEBHOOK_URL"}[channel]
        raise ValueError(f"delivery to {channel} needs {need}")
    return Recipient(channel, address, "demo")  # type: ignore[arg-type]


Router = Callable[[AlertRecord, Catalog], Sequence[Routed]]


def redirected(router: Router, to: Recipient) -> Router:
    """A router that keeps every decision but sends to `to`, naming who it was for."""

    def route(alert: AlertRecord, catalog: Catalog) -> Sequence[Routed]:
        out = []
        for routed in router(alert, catalog)[:1]:  # one destination: one copy is enough
            r = routed.recipient
            recipient = replace(to, name=r.name or r.address, rep_id=r.rep_id,
                                timezone=r.timezone)
            out.append(RoutedAlert(recipient, routed.settings,
                                   f"{routed.why} (redirected to {to.channel})"))
        return out

    return route
