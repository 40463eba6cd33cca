"""`sia serve`, `sia keys`, `sia openapi`: SIA as a running service."""

from __future__ import annotations

import ipaddress
import json
import logging.config
import os
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from sia.cli.common import (
    SERVICE,
    START,
    THRESHOLDS,
    build,
    console,
    errors,
    fail,
    reaching_store,
    unreachable,
)
from sia.cli.common import settings as read_settings
from sia.config import ConfigError
from sia.engine.snapshot import SnapshotError
from sia.settings import Settings

DataDirOpt = Annotated[Path, typer.Option(
    "--data-dir", help="Where the service keeps its journal, alerts, keys and state.")]
DEFAULT_DATA = Path("sia-data")
DEFAULT_SECRET = "dev-only-feedback-secret"

keys_app = typer.Typer(help="API keys for `sia serve`: create, list, revoke.",
                       no_args_is_help=True)


def register_serve(app: typer.Typer) -> None:
    """Add the service commands."""
    from sia.cli.thresholds import app as thresholds_app

    app.command(rich_help_panel=START)(serve)
    app.add_typer(thresholds_app, name="thresholds", rich_help_panel=THRESHOLDS)
    app.add_typer(keys_app, name="keys", rich_help_panel=SERVICE)
    app.command(rich_help_panel=SERVICE)(openapi)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def feedback_secret(settings: Settings, data_dir: Path) -> Settings:
    """The settings with a real feedback secret: SIA_FEEDBACK_SECRET when set (a
    placeholder is refused), else one made at random on first start and kept in the data
    folder (mode 0600), so feedback links can never be forged with a public default."""
    if "feedback_secret" in settings.model_fields_set:
        if settings.feedback_secret.get_secret_value() == DEFAULT_SECRET:
            fail("SIA_FEEDBACK_SECRET holds the public default: set a secret of your own "
                 "(for example `openssl rand -hex 32`), or unset it to let SIA make one")
        return settings
    path = data_dir / "secrets" / "feedback.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    from pydantic import SecretStr

    return settings.model_copy(update={"feedback_secret": SecretStr(path.read_text().strip())})


def serve(
    data_dir: DataDirOpt = DEFAULT_DATA,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8000,
    config: Annotated[Path | None, typer.Option(
        help="detectors.yaml (default: config/)")] = None,
    policy: Annotated[Path | None, typer.Option(help="policy.yaml (default: config/)")] = None,
    routes: Annotated[Path | None, typer.Option(help="routing.yaml (default: config/)")] = None,
    kafka: Annotated[str | None, typer.Option(
        help="front door for a Kafka deployment: accepted events go to the events topic "
             "at this bootstrap address, and `sia worker`s learn from them")] = None,
    clock: Annotated[str | None, typer.Option(
        help="wall (default): absence is noticed as time passes; event: only events move "
             "the clock (SIA_SERVE_CLOCK)")] = None,
    dev: Annotated[bool, typer.Option(
        help="development only, on localhost: no API keys are checked")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run SIA as a service: the ingestion API, the live engine, delivery, the console.

    FastAPI on uvicorn. With no options: SQLite files under ./sia-data, listening on
    127.0.0.1:8000, API docs at /docs. Create a key first (`sia keys create`), or try it
    with --dev on localhost.
    """
    import uvicorn

    from sia.api.app import create_app, server_config
    from sia.service.logs import log_config
    from sia.service.runtime import open_runtime
    from sia.service.state import Locked

    if dev and not _loopback(host):
        fail(f"--dev turns API keys off: it listens on localhost only, not {host}")
    if clock not in (None, "wall", "event"):
        fail(f"--clock {clock!r}: use wall or event")
    logging.config.dictConfig(log_config(log_level))  # before the stores open: they log too
    settings = read_settings()
    if clock is not None:
        settings = settings.model_copy(update={"serve_clock": clock})
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = feedback_secret(settings, data_dir)
    build(config, policy)  # a configuration error stops here, naming file and key
    receiver, running = _kafka_parts(kafka, settings) if kafka else (None, None)
    from sia.service.runtime import DataDir

    try:
        with reaching_store(DataDir(data_dir).store_url(settings)):
            runtime = open_runtime(settings, data_dir, config=config, policy=policy,
                                   routes=routes, dev=dev, receiver=receiver,
                                   running=running, log_level=log_level)
    except (ConfigError, SnapshotError, Locked) as exc:
        fail(str(exc))
    server = uvicorn.Server(server_config(create_app(runtime), settings, host=host,
                                          port=port, log_config=log_config(log_level)))
    _banner(host, port, data_dir, dev, kafka)
    try:
        server.run()
    finally:
        if runtime.lock is not None and server.started is False:
            runtime.stop()  # the app never started, so its lifespan will not stop it


def _banner(host: str, port: int, data_dir: Path, dev: bool, kafka: str | None) -> None:
    where = f"http://{host}:{port}"
    mode = f"front door for Kafka at {kafka}" if kafka else "embedded"
    errors.print(f"SIA serving on {where} ({mode}; data in {data_dir}); API docs at "
                 f"{where}/docs", highlight=False)
    if dev:
        errors.print("[bold red]DEV MODE[/]: no API key is checked, every request acts as an "
                     "admin. Never expose this server.", highlight=False)
    else:
        errors.print(f"Create a key: sia keys create --role crm --name my-crm --data-dir "
                     f"{data_dir}", highlight=False)


def _kafka_parts(bootstrap: str, settings: Settings) -> tuple[Any, Any]:
    """What a front door for Kafka needs: a receiver factory that hands accepted events
    to Kafka (sia/transports/kafka/receiver.py), and, with SIA_REDIS_URL, one that
    publishes threshold versions to the workers (sia/transports/kafka/thresholds.py)."""
    from sia.transports.kafka.receiver import kafka_receiver

    host, _, port = bootstrap.removeprefix("kafka://").partition(":")
    try:
        socket.create_connection((host, int(port or 9092)), timeout=5).close()
    except (OSError, ValueError) as exc:
        unreachable("Kafka", bootstrap, exc)
    running = None
    if settings.redis_url:
        import redis as redis_lib

        from sia.transports.kafka.thresholds import KafkaRunning

        client = redis_lib.Redis.from_url(settings.redis_url)

        def running(versions: Any) -> Any:
            return KafkaRunning(client, settings.kafka_app_id, versions)
    else:
        errors.print("SIA_REDIS_URL is not set: threshold changes are recorded here but not "
                     "published to the workers", highlight=False)
    return kafka_receiver(bootstrap, settings), running


def openapi(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here, not to "
                                                                      "stdout")] = None,
) -> None:
    """Write the HTTP API's OpenAPI description (JSON)."""
    from sia.api.app import create_app

    spec = json.dumps(create_app(None).openapi(), indent=2, sort_keys=True)
    if output is None:
        typer.echo(spec)
    else:
        output.write_text(spec + "\n", encoding="utf-8")
        console.print(f"OpenAPI description written to {output}", highlight=False)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="crm, rep, manager or admin")],
    name: Annotated[str, typer.Option(help="who or what uses it (shown in audit trails)")],
    team: Annotated[str | None, typer.Option(help="manager keys: the team they see")] = None,
    rep: Annotated[str | None, typer.Option(help="rep keys: the rep id they read")] = None,
    data_dir: DataDirOpt = DEFAULT_DATA,
) -> None:
    """Create a key; it is printed once, as the last line, and works at once."""
    from sia.access.keys import KeyProblem
    from sia.service.runtime import DataDir, open_keys

    with reaching_store(DataDir(data_dir).store_url(read_settings())):
        keys, store = open_keys(data_dir, read_settings())
    try:
        key, info = keys.create(role=role, name=name, team=team, rep_id=rep)
    except KeyProblem as exc:
        fail(str(exc))
    finally:
        store.close()
    scope = f", team {info.team}" if info.team else (f", rep {info.rep_id}" if info.rep_id
                                                      else "")
    typer.echo(f"created {info.role} key {info.key_id} ({info.name}{scope}); it is shown "
               "once, keep it:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(data_dir: DataDirOpt = DEFAULT_DATA,
              as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")]
              = False) -> None:
    """Every key (never the keys themselves), revoked ones marked."""
    keys, store = _existing_keys(data_dir)
    try:
        infos = keys.list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([_key_json(i) for i in infos], indent=2))
        return
    for i in infos:
        state = f"revoked {i.revoked_at:%Y-%m-%d}" if i.revoked_at else (
            f"last used {i.last_used_at:%Y-%m-%d %H:%M}" if i.last_used_at else "never used")
        scope = i.team or i.rep_id or "-"
        typer.echo(f"{i.key_id}  {i.role:<8} {scope:<16} {i.name}  ({state})")
    if not infos:
        typer.echo(f"no keys in {data_dir}: create one with `sia keys create`")


def _existing_keys(data_dir: Path) -> tuple[Any, Any]:
    """The keys of a data folder that exists: a reader never makes one."""
    from sia.alerts.store import NoStore
    from sia.service.runtime import DataDir, open_keys

    try:
        with reaching_store(DataDir(data_dir).store_url(read_settings())):
            return open_keys(data_dir, read_settings(), create=False)
    except NoStore as exc:
        fail(f"{exc}: no keys in data folder {data_dir} (use --data-dir; `sia keys create` "
             "makes the first)")


def _key_json(info: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in info.__dict__.items()}


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (sia keys list)")],
                data_dir: DataDirOpt = DEFAULT_DATA) -> None:
    """Revoke a key: it stops working at once, also on a running server."""
    from sia.access.keys import KeyProblem
    keys, store = _existing_keys(data_dir)
    try:
        info = keys.revoke(key_id)
    except KeyProblem as exc:
        fail(str(exc))
    finally:
        store.close()
    typer.echo(f"revoked {info.role} key {info.key_id} ({info.name})")

