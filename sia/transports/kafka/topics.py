"""Topic names and partition counts, and their explicit creation.

Every topic is created by SIA with the partition count the app declares (brokers that
auto-create topics would pick their own count, which breaks co-partitioning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sia.settings import Settings

MiB = 1024 * 1024
CHECKPOINT_BYTES = 32 * MiB  # largest engine checkpoint a changelog message may hold
COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class Topics:
    """The topics of one SIA deployment (`SIA_KAFKA_APP_ID` prefixes every name)."""

    app_id: str
    partitions: int
    rep_partitions: int
    replication: int = 1  # copies of each partition (managed Kafka often wants 3)

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        """Names and counts from SIA_KAFKA_APP_ID, SIA_KAFKA_PARTITIONS,
        SIA_KAFKA_REP_PARTITIONS and SIA_KAFKA_REPLICATION_FACTOR."""
        return cls(settings.kafka_app_id, settings.kafka_partitions,
                   settings.kafka_rep_partitions, settings.kafka_replication_factor)

    def name(self, suffix: str) -> str:
        """<app id>-<suffix>."""
        return f"{self.app_id}-{suffix}"

    @property
    def events(self) -> str:
        """Every event, keyed by customer (products and reps go to every partition)."""
        return self.name("events")

    @property
    def events_by_rep(self) -> str:
        """Events the rep-level detectors handle, repartitioned by rep."""
        return self.name("events-by-rep")

    @property
    def population(self) -> str:
        """Population-model updates customer partitions send each other."""
        return self.name("population")

    @property
    def alerts(self) -> str:
        """Alerts that passed policy, keyed by subject."""
        return self.name("alerts")

    @property
    def dead_letter(self) -> str:
        """Messages that could not be processed, each with its reason."""
        return self.name("dead-letter")

    def reference(self, kind: str) -> str:
        """Compacted topic of the latest customer, product or rep records."""
        return self.name(f"{kind}s")

    def changelog(self, table: str) -> str:
        """Faust's name for a table's changelog topic."""
        return f"{self.app_id}-{table}-changelog"

    def declared(self) -> dict[str, tuple[int, dict[str, str]]]:
        """Every topic with its partition count and configuration."""
        big = {"max.message.bytes": str(CHECKPOINT_BYTES)}
        return {
            self.events: (self.partitions, {}),
            self.events_by_rep: (self.rep_partitions, {}),
            self.population: (self.partitions, {"max.message.bytes": str(8 * MiB)}),
            self.alerts: (self.partitions, {}),
            self.dead_letter: (1, {}),
            self.reference("customer"): (self.partitions, COMPACTED),
            self.reference("product"): (1, COMPACTED),
            self.reference("rep"): (1, COMPACTED),
            self.changelog("engine-state"): (self.partitions, {**COMPACTED, **big}),
            self.changelog("rep-engine-state"): (self.rep_partitions, {**COMPACTED, **big}),
        }


class TopicMismatch(RuntimeError):
    """A topic exists with another partition count than the app declares."""


async def create_topics(bootstrap: str, topics: Topics,
                        options: dict[str, Any] | None = None) -> list[str]:
    """Create the missing topics; refuse existing ones with another partition count.
    Returns the names created. `options`: TLS and SASL (default: from the settings)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from sia.transports.kafka.security import client_options

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                **(client_options() if options is None else options))
    await admin.start()
    try:
        wanted = topics.declared()
        existing = {t["topic"]: len(t["partitions"])
                    for t in await admin.describe_topics(list(wanted))
                    if t["error_code"] == 0}
        for name, count in existing.items():
            if count != wanted[name][0]:
                raise TopicMismatch(
                    f"topic {name} has {count} partitions, SIA is configured for "
                    f"{wanted[name][0]}: use another SIA_KAFKA_APP_ID, or recreate it")
        missing = [NewTopic(name, count, topics.replication, topic_configs=config)
                   for name, (count, config) in wanted.items() if name not in existing]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, *_ in response.topic_errors:
                if code not in (0, 36):  # 36: created meanwhile by another worker
                    raise RuntimeError(f"cannot create topic {name}: Kafka error {code}")
        return [t.name for t in missing]
    finally:
        await admin.close()


def bootstrap_servers(broker_url: str) -> str:
    """host:port list from a Faust broker URL (kafka://h1:9092;h2:9092)."""
    servers = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            servers.append(part)
    return ",".join(servers)
