"""`sia deliver`, `sia routes test`, `sia snooze`, `sia mute`, `sia serve-feedback`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from sia.alerts.store import AlertStore
from sia.cli.common import console, db_url, errors, fail
from sia.config import ConfigError
from sia.engine.catalog import Catalog
from sia.engine.engine import Engine
from sia.engine.snapshot import SnapshotError
from sia.settings import get_settings

DbOpt = Annotated[str, typer.Option(help="alert store (SQLite path or URL)")]
RoutesOpt = Annotated[Path | None, typer.Option(help="routing.yaml (default: config/)")]

SETTING = {"slack": "SIA_SLACK_TOKEN", "email": "SIA_SMTP_HOST",
           "webhook": "SIA_WEBHOOK_SECRET", "console": "always on"}

routes_app = typer.Typer(help="Inspect the routing tree.", no_args_is_help=True)


@routes_app.command("test")
def routes_test(
    alert_json: Annotated[Path, typer.Argument(help="an alert as `sia alerts --json` prints "
                                                    "it, optionally with a context section")],
    routes: RoutesOpt = None,
    state: Annotated[Path | None, typer.Option(
        help="engine snapshot with the customers and reps (else only the JSON's context)")]
    = None,
) -> None:
    """Show who would get an alert, and through what."""
    from sia.config import config_dir
    from sia.routing.explain import AlertJsonError, explain_route

    try:
        data = json.loads(alert_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{alert_json}: {exc}")
    if isinstance(data, list):  # `sia alerts --json` prints a list: take the first
        data = data[0] if data else {}
    try:
        typer.echo(explain_route(data, routes or config_dir() / "routing.yaml",
                                 _catalog(state)))
    except (AlertJsonError, ConfigError) as exc:
        fail(f"{alert_json}: {exc}")


def _catalog(state: Path | None) -> Catalog:
    if state is None:
        return Catalog()
    try:
        from sia.detectors.config import load_detectors

        return Engine.restore(state.read_bytes(), detectors=load_detectors()).catalog
    except (OSError, SnapshotError, ConfigError) as exc:
        fail(f"{state}: {exc}")


def register_delivery(app: typer.Typer) -> None:
    """Add the delivery commands."""
    app.add_typer(routes_app, name="routes")

    @app.command()
    def deliver(
        db: DbOpt = "sia.db",
        state: Annotated[Path | None, typer.Option(
            help="engine snapshot (from `sia replay --state`) holding the customers and reps "
                 "that routing needs")] = None,
        routes: RoutesOpt = None,
        follow: Annotated[bool, typer.Option(help="keep delivering every --interval")] = False,
        interval: Annotated[float, typer.Option(min=0.5)] = 5.0,
    ) -> None:
        """Route stored alerts and send what is due (wall-clock time)."""
        from sia.delivery.notifiers import notifiers_from
        from sia.delivery.service import Delivery
        from sia.feedback.relevance import Relevance
        from sia.notifiers.base import FeedbackLinks
        from sia.notifiers.tokens import feedback_links

        settings = get_settings()
        store = AlertStore(db_url(db))
        secret = settings.feedback_secret.get_secret_value().encode()

        def links(alert_id: str, rep_id: str | None) -> FeedbackLinks:
            return feedback_links(settings.feedback_base_url, secret, alert_id, rep_id,
                                  int(time.time()))

        try:
            delivery = Delivery(store, _catalog(state), notifiers_from(settings),
                                routes=routes, priority=Relevance.from_store(store).priority,
                                links=links, max_attempts=settings.max_attempts)
        except ConfigError as exc:
            fail(str(exc))
        while True:
            stats = delivery.step(datetime.now(UTC))
            console.print(f"sent {stats.sent}, retrying {stats.retried}, dead-lettered "
                          f"{stats.dead}", highlight=False)
            for channel, count in sorted(stats.waiting.items()):
                errors.print(f"{count} due messages wait for the {channel} notifier: configure "
                             f"it ({SETTING[channel]})", highlight=False)
            if not follow:
                break
            time.sleep(interval)
        store.close()

    def _hold(kind: str, scope: str, target: str, who: str, why: str, days: float,
              rep: str | None, db: str) -> None:
        from sia.delivery.dispatcher import snooze

        now = datetime.now(UTC)
        try:
            number = snooze(AlertStore(db_url(db)), scope=scope, target=target, who=who,
                            why=why, until=now + timedelta(days=days), now=now, rep_id=rep,
                            kind=kind)
        except ValueError as exc:
            fail(str(exc))
        console.print(f"{kind} {number}: {scope} {target} until "
                      f"{(now + timedelta(days=days)):%Y-%m-%d %H:%M} UTC ({who}: {why})",
                      highlight=False)

    @app.command("snooze")
    def snooze_cmd(
        scope: Annotated[str, typer.Argument(help="customer, alert (a dedup key) or detector")],
        target: Annotated[str, typer.Argument(help="the customer id, dedup key or detector")],
        who: Annotated[str, typer.Option(help="who snoozes")],
        why: Annotated[str, typer.Option(help="why")],
        days: Annotated[float, typer.Option(min=0.01)] = 7.0,
        rep: Annotated[str | None, typer.Option(help="only for this rep")] = None,
        db: DbOpt = "sia.db",
    ) -> None:
        """Hold alerts back until a date; a notice says when the snooze ends."""
        _hold("snooze", scope, target, who, why, days, rep, db)

    @app.command("mute")
    def mute_cmd(
        scope: Annotated[str, typer.Argument(help="customer, alert (a dedup key) or detector")],
        target: Annotated[str, typer.Argument(help="the customer id, dedup key or detector")],
        who: Annotated[str, typer.Option(help="who mutes")],
        why: Annotated[str, typer.Option(help="why")],
        days: Annotated[float, typer.Option(min=0.01)] = 30.0,
        rep: Annotated[str | None, typer.Option(help="only for this rep")] = None,
        db: DbOpt = "sia.db",
    ) -> None:
        """Drop alerts until a date, without a notice."""
        _hold("mute", scope, target, who, why, days, rep, db)

    @app.command("serve-feedback")
    def serve_feedback(
        db: DbOpt = "sia.db",
        host: Annotated[str, typer.Option()] = "127.0.0.1",
        port: Annotated[int, typer.Option()] = 8080,
    ) -> None:
        """Serve the Slack interactivity endpoint and the email feedback links."""
        from sia.delivery.dispatcher import ensure_tables
        from sia.feedback.server import FeedbackServer

        settings = get_settings()
        store = AlertStore(db_url(db))
        ensure_tables(store)
        signing = settings.slack_signing_secret
        server = FeedbackServer(
            store, feedback_secret=settings.feedback_secret.get_secret_value().encode(),
            slack_signing_secret=signing.get_secret_value().encode() if signing else None,
            host=host, port=port)
        console.print(f"feedback endpoint on {server.url} (/slack/interactivity, "
                      "/feedback/email)", highlight=False)
        server.serve_forever()
