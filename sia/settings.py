"""Settings from the environment (SIA_*) or a .env file; secrets are never printed.

Got through `get_settings()` (cached, built on first use, so tests can override the
environment before it); `get_settings.cache_clear()` forgets them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = ("changeme", "change-me", "secret", "dev-only", "placeholder", "xxx")


class SecretSettingError(RuntimeError):
    """A secret setting is unusable; the message names the setting, never its value.

    Deliberately not a ValueError: pydantic would wrap one in a ValidationError that
    carries every input (the secrets too) in its message and in `errors()`.
    """


class Settings(BaseSettings):
    """Everything SIA reads from its environment.

    Kafka over TLS and SASL (managed Kafka; docs/kafka-security.md):
    SIA_KAFKA_SECURITY_PROTOCOL is PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL;
    the SASL_* protocols need SIA_KAFKA_SASL_USERNAME and SIA_KAFKA_SASL_PASSWORD, with
    SIA_KAFKA_SASL_MECHANISM PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512; SSL and
    SASL_SSL verify the brokers against the system's CAs or SIA_KAFKA_SSL_CAFILE, and
    SIA_KAFKA_SSL_CERTFILE (with SIA_KAFKA_SSL_KEYFILE) adds a client certificate.
    Managed clusters usually also want SIA_KAFKA_REPLICATION_FACTOR=3. Combinations that
    cannot work are refused when the settings are read, naming the settings, never the
    values. Every Kafka client SIA makes gets them (sia/transports/kafka/security.py).
    """

    # hide_input_in_errors: a wrong value (a token pasted into the wrong variable) is never
    # echoed in a validation error
    model_config = SettingsConfigDict(env_prefix="SIA_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    # production refuses placeholder secrets
    environment: Literal["development", "production"] = "development"
    # the alert store (a SQLAlchemy URL: SQLite or PostgreSQL); sia serve: the data
    # folder's sia.db unless set
    database_url: str = "sqlite:///sia.db"
    redis_url: str | None = None  # shared cooldowns; in-process when unset

    # delivery: which channel the demo and `sia deliver` use when several are configured
    delivery_channel: Literal["auto", "console", "slack", "email", "webhook"] = "auto"
    slack_token: SecretStr | None = None  # a Slack bot token: Slack delivery is on
    slack_base_url: str = "https://slack.com/api/"  # the Slack Web API (tests use a fake)
    slack_channel: str | None = None  # where alerts go when a rep has no Slack id
    slack_signing_secret: SecretStr | None = None  # checks Slack's button clicks
    smtp_host: str | None = None  # an SMTP server: email delivery is on
    smtp_port: int = 25
    smtp_sender: str = "sia@localhost"  # the From address
    smtp_username: str | None = None  # with smtp_password: SMTP authentication
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False  # upgrade the connection with STARTTLS
    smtp_ssl: bool = False  # implicit TLS (SMTP over TLS, port 465 unless SIA_SMTP_PORT)
    smtp_ca_file: str | None = None  # CA bundle to verify the SMTP server (default: system)
    # a username and password over a connection with neither TLS option are refused
    # unless this is true (e.g. a relay on the same host)
    smtp_allow_plaintext_auth: bool = False
    email_to: str | None = None  # where alerts go when a rep has no address
    webhook_url: str | None = None  # a URL alerts are posted to as JSON: webhook delivery is on
    webhook_secret: SecretStr | None = None  # signs each post (X-SIA-Signature)
    # signs feedback links and console sessions; sia serve makes one in its data folder
    # when unset
    feedback_secret: SecretStr = SecretStr("dev-only-feedback-secret")
    feedback_base_url: str = "http://127.0.0.1:8080"  # where email feedback links point
    max_attempts: int = 8  # delivery attempts of a message before it is dead-lettered
    # alerts about events more than this many days before the time of routing (a replay
    # or backfill of history) are kept as history, never sent to people
    delivery_max_age_days: float = Field(default=2.0, gt=0)

    # scale-out (sia worker, sia produce): Kafka topics are named "<kafka_app_id>-..."
    kafka_broker: str = "kafka://127.0.0.1:19092"
    kafka_app_id: str = "sia"
    kafka_partitions: int = Field(default=4, ge=1)  # events, keyed by customer
    kafka_rep_partitions: int = Field(default=1, ge=1)  # events repartitioned by rep
    # copies of every partition of the topics SIA creates (its own and Faust's changelogs);
    # 1 for a single test broker, usually 3 on managed Kafka, which may refuse fewer
    kafka_replication_factor: int = Field(default=1, ge=1)
    # events per batch, and so per checkpoint of each partition the batch touched: in a
    # backlog, 10,000 made the worker's loop 1.3-1.45x faster than 2,000 (checkpoints
    # 2.5 s instead of 8 s on online retail, docs/BENCHMARKS.md); live, batches close
    # after kafka_batch_seconds anyway
    kafka_batch: int = Field(default=10_000, ge=1)
    kafka_batch_seconds: float = Field(default=1.0, gt=0)  # or fewer after this long
    # a partition's checkpoint (its whole state: about 3 MB and 0.3 s of CPU after a year
    # of online retail) is written at most this often; 0: after every batch. A crash
    # costs reading the events since again (sia/transports/kafka/pacing.py)
    kafka_checkpoint_seconds: float = Field(default=10.0, ge=0)
    # "wall": a timer ticks detectors by the wall clock (live); "event": only event time
    # moves the clock (replays of history, tests)
    kafka_clock: Literal["wall", "event"] = "wall"
    # live ("wall") only: how late after it happened an event may still reach Kafka; a
    # caught-up customer partition tells the rep stream it has reached now minus this
    kafka_lateness_seconds: float = Field(default=300.0, ge=0)
    # customer partitions learn population models (drift's silence model, ...) from every
    # partition's customers, a day late, instead of each from its own (docs/SCALE_OUT.md)
    kafka_share_population: bool = True
    kafka_store: str = "memory://"  # Faust table store: memory:// or rocksdb://
    # where Faust's data folder goes (a rocksdb:// store keeps its tables there):
    # "<kafka_app_id>-data" inside this folder; unset: in the working directory
    kafka_data_dir: str | None = None
    # how every Kafka client SIA makes (workers, `sia produce`, `sia topics`, the front
    # door of `sia serve --kafka`) talks to the brokers; managed Kafka (Confluent Cloud,
    # MSK, Aiven, ...) wants SASL_SSL or SSL (docs/kafka-security.md)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # SSL, SASL_SSL: CA bundle to verify the brokers (default: the system's), and a client
    # certificate and key for brokers that authenticate clients by certificate (mTLS)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    alert_dedup_days: float = Field(default=35.0, gt=0)  # Redis alert-id keys live this long
    # how often workers look for a configuration published with `sia publish-config`
    config_poll_seconds: float = Field(default=10.0, gt=0)

    # the service (sia serve): events dated more than this past the wall clock are refused
    event_max_ahead_hours: float = Field(default=24.0, ge=0)
    # events dated more than this before the newest event are refused (reference data
    # excepted): learning them would run decayed state backwards. Backfill history first.
    event_max_late_days: float = Field(default=7.0, ge=0)
    # "wall": the clock also moves with the wall clock, so absence is noticed when no
    # event arrives; "event": only events move it (replays, tests)
    serve_clock: Literal["wall", "event"] = "wall"
    serve_tick_seconds: float = Field(default=30.0, gt=0)  # how often the wall clock is read
    # the wall clock moves the engine at most this far past the newest event: a feed
    # silent for longer is broken, not every customer lost
    serve_clock_lead_days: float = Field(default=3.0, ge=0)
    serve_snapshot_seconds: float = Field(default=60.0, gt=0)  # state saved this often
    # events accepted but not yet learned beyond which POST /v1/events answers 429 and
    # /readyz says not ready (they wait on disk in the journal, not in memory)
    serve_max_backlog: int = Field(default=100_000, ge=1)
    serve_deliver_seconds: float = Field(default=1.0, gt=0)  # delivery loop period
    # open connections and requests in flight beyond which the server answers 503 at
    # once (a flood of stalled clients cannot exhaust it); idle keep-alive connections
    # are closed after serve_keep_alive_seconds
    serve_max_connections: int = Field(default=1000, ge=1)
    serve_keep_alive_seconds: int = Field(default=5, ge=1)
    # the preview worker learns what the next threshold preview (over 90 days) needs at
    # start, when a backfill is over, and then this often while the journal grows, so
    # that no manager waits for a cold start; previews within ten minutes of a warm-up
    # see the journal as it did (`fresh` for the newest); 0: only when asked
    serve_preview_warm_seconds: float = Field(default=600.0, ge=0)

    @model_validator(mode="after")
    def _kafka_security_that_can_work(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if not self.kafka_sasl_username or self.kafka_sasl_password is None:
                raise SecretSettingError(
                    f"SIA_KAFKA_SECURITY_PROTOCOL={protocol} needs SIA_KAFKA_SASL_USERNAME "
                    "and SIA_KAFKA_SASL_PASSWORD")
        elif self.kafka_sasl_username or self.kafka_sasl_password is not None:
            raise SecretSettingError(
                f"SIA_KAFKA_SASL_USERNAME/PASSWORD are set but SIA_KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}: use SASL_SSL (or SASL_PLAINTEXT) to send them")
        files = {"SIA_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
                 "SIA_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
                 "SIA_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile}
        given = [name for name, value in files.items() if value]
        if given and not protocol.endswith("SSL"):
            raise SecretSettingError(f"{', '.join(given)} set but SIA_KAFKA_SECURITY_PROTOCOL "
                                     f"is {protocol}: use SSL or SASL_SSL")
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise SecretSettingError("SIA_KAFKA_SSL_KEYFILE needs SIA_KAFKA_SSL_CERTFILE")
        return self

    @model_validator(mode="after")
    def _real_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        for name in ("slack_token", "slack_signing_secret", "smtp_password", "webhook_secret",
                     "feedback_secret", "kafka_sasl_password"):
            value = getattr(self, name)
            if value is not None and any(p in value.get_secret_value().lower()
                                         for p in PLACEHOLDERS):
                raise SecretSettingError(f"SIA_{name.upper()} holds a placeholder; set a "
                                         "real secret in production")
        return self

    def channel(self) -> str:
        """The delivery channel in use: the one asked for, else the first configured."""
        if self.delivery_channel != "auto":
            return self.delivery_channel
        if self.slack_token is not None:
            return "slack"
        if self.smtp_host:
            return "email"
        if self.webhook_url:
            return "webhook"
        return "console"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read once."""
    return Settings()
