"""`sia bench --kafka --json` on the bundled sample against the test broker: every loop
consumed every message, and the figures are there (no timing thresholds: speed is
measured, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sia.events.reader import read_events
from tests.transports import kafka_helpers as kh


def _env(broker: str) -> dict[str, str]:
    env = kh.plain_env()
    env.update({"SIA_KAFKA_BROKER": broker, "SIA_KAFKA_BATCH": "1000"})
    return env


def _sia(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sia", *args], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled online retail sample's first 1,500 orders and returns, with the
    products they sell and every rep and customer record (a few thousand events)."""
    from sia.cli.demo import sample_path

    folder = tmp_path_factory.mktemp("bench")
    full = folder / "sample.jsonl.gz"
    done = _sia(["import", "online-retail", str(sample_path()), "-o", str(full)],
                _env("kafka://unused:1"), folder)
    assert done.returncode == 0, done.stderr
    events = [e for e in read_events(full) if not hasattr(e, "reason")]
    sales = [e for e in events if e.type in ("order", "return")][:1500]
    sold = {line.product_id for e in sales for line in e.lines}
    kept = {id(e) for e in sales}
    out = folder / "subset.jsonl"
    with out.open("w") as handle:
        for e in events:
            if (id(e) in kept or e.type in ("rep", "customer")
                    or (e.type == "product" and e.product_id in sold)):
                handle.write(e.model_dump_json(exclude_none=True) + "\n")
    return out


@pytest.fixture(scope="module")
def report(kafka_broker: str, sample: Path) -> dict[str, Any]:
    """One `sia bench --kafka --json` run: one worker, then two."""
    done = _sia(["bench", "--kafka", "--json", "--events", str(sample), "--workers", "1,2",
           "--partitions", "2"],
                _env(kafka_broker), sample.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _cpu_present(cpu: dict[str, Any], names: list[str]) -> None:
    for name in names:
        assert cpu[name]["cpu_s"] > 0, name
        assert cpu[name]["cpu_per_wall"] > 0, name
    assert cpu["machine_busy_cores"] > 0


@pytest.mark.kafka
def test_conditions_name_what_was_measured(report: dict[str, Any], sample: Path) -> None:
    events = sum(1 for e in read_events(sample) if not hasattr(e, "reason"))
    c = report["conditions"]
    assert c["events"] == events
    assert c["messages"] > events  # products go to every partition
    assert c["partitions"] == 2 and c["batch"] == 1000
    assert c["cpu_count"] >= 1 and len(c["load_average_at_start"]) == 3
    assert set(c["versions"]) >= {"sia", "python", "faust", "aiokafka"}
    assert report["source"] == str(sample)


@pytest.mark.kafka
def test_every_loop_consumed_every_message(report: dict[str, Any]) -> None:
    messages = report["conditions"]["messages"]
    assert report["raw"]["messages"] == messages
    assert report["noop"]["messages"] == messages
    assert [run["workers"] for run in report["sia"]] == [1, 2]
    for run in report["sia"]:
        assert run["messages"] == messages
        assert run["topic_ends"][f"{run['group']}-events"] == messages
        assert run["dead_letters"] == 0
        assert run["unstable_polls"] >= 0
        assert run["checkpoints"] > 0 and run["events_by_rep"] > 0


@pytest.mark.kafka
def test_rates_and_cpu_are_real(report: dict[str, Any]) -> None:
    assert report["raw"]["messages_per_s"] > 0 and report["raw"]["events_per_s"] > 0
    _cpu_present(report["noop"]["cpu"], ["noop"])
    for run in report["sia"]:
        assert run["seconds"] > 0 and run["events_per_s_per_worker"] > 0
        assert run["events_per_worker_cpu_s"] > 0
        _cpu_present(run["cpu"], [f"worker{i + 1}" for i in range(run["workers"])])
    engine = report["engine"]
    assert engine["engine_events_per_s"] > 0 and engine["partitioned_events_per_s"] > 0
    assert len(engine["detectors"]) == 8
    loop = engine["worker_in_process"]  # the worker's own batch code, without Kafka
    assert loop["alerts"] == engine["partitioned_alerts"]  # it computes the same
    assert loop["events_by_rep"] > 0 and loop["step_seconds"]["checkpoint"] > 0


@pytest.mark.kafka
def test_no_broker_names_the_setting(sample: Path) -> None:
    done = _sia(["bench", "--kafka", "--events", str(sample)], _env("kafka://127.0.0.1:1"),
                sample.parent)
    assert done.returncode != 0
    assert "SIA_KAFKA_BROKER" in done.stdout + done.stderr


@pytest.mark.kafka
def test_leaves_no_topics_behind(report: dict[str, Any], kafka_broker: str) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.removeprefix("kafka://"))
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    ids = [report["noop"]["group"].removesuffix("-noop")] + [r["group"] for r in report["sia"]]
    left = [t for t in asyncio.run(topics()) if any(t.startswith(f"{i}-") for i in ids)]
    assert left == []
