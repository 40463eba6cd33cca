"""Exit 0 when a Kafka broker answers a metadata request, else 1 (after `--wait` seconds).

Used by scripts/services.sh: a port that accepts connections is not a ready broker; a
client that bootstraps and fetches the cluster's metadata (with a broker in it) is, once
it also finds a group coordinator. A broker just formatted has no offsets topic: the
first FindCoordinator request makes it, and until it is loaded consumer groups (and
admin calls about them) fail with "coordinator not available".
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient


async def answers(bootstrap: str) -> bool:
    """True when the broker returns metadata listing at least one broker, and a
    coordinator for consumer groups."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                            connections_max_idle_ms=10000)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        if not metadata.brokers():
            return False
    except Exception:
        return False
    finally:
        await client.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.find_coordinator("sia-services-ready")
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def main() -> int:
    """Poll until the broker answers or the time is up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap", help="host:port")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep trying")
    parser.add_argument("--pid", type=int, help="give up early when this process is gone")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected
    deadline = time.monotonic() + args.wait
    while True:
        if asyncio.run(answers(args.bootstrap)):
            return 0
        if time.monotonic() >= deadline:
            return 1
        if args.pid and not os.path.exists(f"/proc/{args.pid}"):
            return 1  # the broker died while starting
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
