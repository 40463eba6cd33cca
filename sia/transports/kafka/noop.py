"""A Faust worker whose one agent only counts events: the floor of what a per-event
Faust agent costs, measured beside SIA's workers by `sia bench --kafka`.

Run as `python -m sia.transports.kafka.noop`, configured by the environment (it is not
a SIA deployment, so it reads none of SIA's settings): SIA_BENCH_NOOP_APP_ID (also its
consumer group), SIA_BENCH_NOOP_TOPIC (an existing topic), SIA_BENCH_NOOP_PARTITIONS
and SIA_BENCH_NOOP_BROKER. Faust's own variables (BROKER_COMMIT_INTERVAL) apply.
"""

from __future__ import annotations

import os
from typing import Any

import faust


def make_app(app_id: str, broker: str, topic: str, partitions: int) -> faust.App:
    """A Faust app with SIA's serialisation (raw bytes) and one counting agent."""
    app = faust.App(app_id, broker=broker, web_enabled=False, key_serializer="raw",
                    value_serializer="raw", topic_partitions=partitions,
                    topic_replication_factor=1)
    source = app.topic(topic, partitions=partitions, value_type=bytes, key_type=bytes)
    counted = [0]

    @app.agent(source, name="count")
    async def count(stream: Any) -> None:
        async for _value in stream:  # one event at a time, nothing else
            counted[0] += 1

    return app


def main() -> None:
    """Run the worker until it is stopped."""
    from faust.worker import Worker

    env = os.environ
    app = make_app(env["SIA_BENCH_NOOP_APP_ID"], env["SIA_BENCH_NOOP_BROKER"],
                   env["SIA_BENCH_NOOP_TOPIC"], int(env["SIA_BENCH_NOOP_PARTITIONS"]))
    Worker(app, loglevel=env.get("SIA_BENCH_NOOP_LOGLEVEL", "warning")).execute_from_commandline()


if __name__ == "__main__":
    main()
