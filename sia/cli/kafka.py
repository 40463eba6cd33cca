"""`sia worker`, `sia produce`, `sia topics`, `sia publish-config`: the Kafka scale-out
commands. A broker, Redis or database they cannot reach ends them with one line, `cannot
reach <service> at <where>: <why>` (sia.cli.common.reaching), exit code 2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sia.cli.common import SCALE_OUT, console, fail, masked, reaching, settings
from sia.config import ConfigError
from sia.detectors.config import load_detectors
from sia.policy import load_policy

ConfigOpt = Annotated[Path | None, typer.Option(help="detectors.yaml (default: config/)")]
PolicyOpt = Annotated[Path | None, typer.Option(help="policy.yaml (default: config/)")]


def register_kafka(app: typer.Typer) -> None:
    """Add the scale-out commands to the CLI."""
    app.command(rich_help_panel=SCALE_OUT)(worker)
    app.command(rich_help_panel=SCALE_OUT)(produce)
    app.command(rich_help_panel=SCALE_OUT)(topics)
    app.command(name="publish-config", rich_help_panel=SCALE_OUT)(publish_config)


def _topics() -> Any:
    from sia.transports.kafka.topics import Topics, bootstrap_servers

    current = settings()
    return current, Topics.from_settings(current), bootstrap_servers(current.kafka_broker)


def _kafka(bootstrap: str) -> Any:
    """`reaching` Kafka, named with its security: 'Kafka at b:9092 (SASL_SSL ...)'."""
    from sia.transports.kafka.security import describe

    security = describe(settings())
    return reaching("Kafka", bootstrap + ("" if security == "PLAINTEXT" else
                                          f" ({security})"))


def _redis(url: str) -> Any:
    return reaching("Redis", masked(url))


def topics() -> None:
    """Create the Kafka topics SIA declares (missing ones only; counts are checked).

    Names start with SIA_KAFKA_APP_ID; partitions: SIA_KAFKA_PARTITIONS and
    SIA_KAFKA_REP_PARTITIONS; copies: SIA_KAFKA_REPLICATION_FACTOR.
    """
    from sia.transports.kafka.topics import TopicMismatch, create_topics

    _, declared, bootstrap = _topics()
    try:
        with _kafka(bootstrap):
            created = asyncio.run(create_topics(bootstrap, declared))
    except TopicMismatch as exc:
        fail(str(exc))
    for name, (count, config) in declared.declared().items():
        mark = "created" if name in created else "exists"
        console.print(f"{name}: {count} partitions {config or ''} ({mark})", highlight=False)


def produce(
    file: Annotated[Path, typer.Argument(help="JSON Lines events (.jsonl or .jsonl.gz)")],
    rejects: Annotated[Path, typer.Option(help="where bad records are kept")] = Path(
        "sia-rejects.jsonl"),
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
) -> None:
    """Publish an events file to Kafka, for the workers to learn from.

    Events go to the events topic by customer, reference data (customers, products,
    reps) also to their compacted topics. Invalid records are kept in --rejects, not
    sent. The broker is SIA_KAFKA_BROKER; TLS and SASL: SIA_KAFKA_SECURITY_PROTOCOL and
    the other SIA_KAFKA_* settings (docs/kafka-security.md).
    """
    from sia.events.reader import RejectSink, read_events
    from sia.transports.kafka.producer import produce as send
    from sia.transports.kafka.topics import TopicMismatch, create_topics

    _, declared, bootstrap = _topics()
    if not file.exists():
        fail(f"{file}: no such file")
    sink = RejectSink(rejects)
    try:
        with _kafka(bootstrap):
            asyncio.run(create_topics(bootstrap, declared))
            summary = asyncio.run(send(read_events(file), bootstrap=bootstrap,
                                       topics=declared, sink=sink))
    except TopicMismatch as exc:
        fail(str(exc))
    finally:
        sink.close()
    if as_json:
        typer.echo(json.dumps(summary.__dict__, sort_keys=True))
    else:
        console.print(f"sent {summary.events} events as {summary.messages} messages to "
                      f"{bootstrap}; {summary.rejects} rejected (kept in {rejects})",
                      highlight=False)


def worker(
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run one worker: detection for the partitions Kafka assigns it.

    Alerts go into the store (SIA_DATABASE_URL), deduplicated through Redis
    (SIA_REDIS_URL). Start as many as there are partitions to share the work. The
    broker is SIA_KAFKA_BROKER; managed Kafka: SIA_KAFKA_SECURITY_PROTOCOL (SSL,
    SASL_SSL), SIA_KAFKA_SASL_MECHANISM/USERNAME/PASSWORD, SIA_KAFKA_SSL_CAFILE/CERTFILE/
    KEYFILE and SIA_KAFKA_REPLICATION_FACTOR (docs/kafka-security.md).
    """
    import redis as redis_lib
    from faust.worker import Worker

    from sia.cli.common import open_store
    from sia.transports import shared_config
    from sia.transports.kafka.app import SiaApp
    from sia.transports.kafka.topics import TopicMismatch, create_topics

    current, declared, bootstrap = _topics()
    redis = redis_lib.Redis.from_url(current.redis_url) if current.redis_url else None
    published = None
    if redis is not None and current.redis_url:
        with _redis(current.redis_url):
            published = shared_config.fetch(redis, current.kafka_app_id)
    try:
        if published is not None:  # the team's published thresholds win over local files
            make_detectors, policy_config = published.load()
            typer.echo(f"using the configuration published {published.published_at} "
                       f"(version {published.version})")  # one line, never wrapped
        else:
            load_detectors(config)  # configuration errors stop here, with file and key
            policy_config = load_policy(policy_file)

            def make_detectors() -> list[Any]:
                return load_detectors(config)
    except ConfigError as exc:
        fail(str(exc))
    try:
        with _kafka(bootstrap):
            asyncio.run(create_topics(bootstrap, declared))
    except TopicMismatch as exc:
        fail(str(exc))
    store = open_store(current.database_url)
    sia = SiaApp(current, make_detectors, policy_config, store=store, redis=redis,
                 config_version=published.version if published else None)
    Worker(sia.app, loglevel=loglevel).execute_from_commandline()


def publish_config(
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
    status: Annotated[bool, typer.Option(
        "--status", help="only show what each worker did with the published version")
    ] = False,
) -> None:
    """Publish thresholds to every worker, through Redis (SIA_REDIS_URL).

    Validated first, then applied by each worker to the partitions it owns within
    SIA_CONFIG_POLL_SECONDS, keeping what was learned. A change to a threshold that
    shapes what was learned across customers is refused by the workers, with the reason
    (see --status); replay the events to rebuild with it.
    """
    import redis as redis_lib

    from sia.config import config_dir
    from sia.detectors.config import default_detectors_file
    from sia.transports import shared_config

    current_settings = settings()
    if not current_settings.redis_url:
        fail("SIA_REDIS_URL is not set: workers share their configuration through Redis")
    redis = redis_lib.Redis.from_url(current_settings.redis_url, decode_responses=True)
    app_id = current_settings.kafka_app_id
    with _redis(current_settings.redis_url):
        if not status:
            try:
                published = shared_config.publish(
                    redis, app_id, config or default_detectors_file(),
                    policy_file or config_dir() / "policy.yaml")
            except ConfigError as exc:
                fail(f"not published: {exc}")
            console.print(f"published version {published.version} for app {app_id}; "
                          f"workers apply it within {current_settings.config_poll_seconds:g} "
                          "s", highlight=False)
        current = shared_config.current_version(redis, app_id)
        statuses: dict[str, str] = redis.hgetall(shared_config.status_key(app_id))  # type: ignore[assignment]
    for worker_name, outcome in sorted(statuses.items()):
        mark = "" if current and current in outcome else " (an older version)"
        console.print(f"{worker_name}: {outcome}{mark}", highlight=False)
