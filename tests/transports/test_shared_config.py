"""Thresholds published through a real Redis: validated before publishing, announced,
and applied by a worker to the partitions it owns without losing what they learned;
a change that would invalidate what was learned is refused with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sia.config import ConfigError, config_dir
from sia.policy import load_policy
from sia.transports import shared_config
from tests.transports import kafka_helpers as kh
from tests.transports.test_agents import Recorder, _app, _order


def _files(tmp_path: Path, replace: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """The shipped configuration, with one line changed."""
    text = (config_dir() / "detectors.yaml").read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1])
    detectors = tmp_path / f"detectors-{abs(hash(text))}.yaml"
    detectors.write_text(text)
    return detectors, config_dir() / "policy.yaml"


def test_a_valid_configuration_is_published_and_announced(tmp_path: Path,
                                                          redis_client: Any) -> None:
    listener = redis_client.pubsub()
    listener.subscribe(shared_config.channel("unit"))
    listener.get_message(timeout=1.0)  # the subscription's confirmation
    published = shared_config.publish(redis_client, "unit", *_files(tmp_path))
    fetched = shared_config.fetch(redis_client, "unit")
    assert fetched == published
    assert published.version == shared_config.version_of(published.detectors,
                                                          published.policy)
    notice = None
    deadline = time.monotonic() + 5
    while notice is None and time.monotonic() < deadline:
        notice = listener.get_message(timeout=1.0)
    assert notice is not None and notice["data"].decode() == published.version
    listener.close()


def test_an_invalid_configuration_is_not_published(tmp_path: Path, redis_client: Any) -> None:
    before = shared_config.publish(redis_client, "unit", *_files(tmp_path))
    broken = _files(tmp_path, ("lost_probability: 0.8", "lost_probability: 1.8"))
    with pytest.raises(ConfigError, match="lost_probability"):
        shared_config.publish(redis_client, "unit", *broken)
    assert shared_config.fetch(redis_client, "unit") == before


def _worker_with_history(tmp_path: Path, redis_client: Any) -> Any:
    sia = _app(tmp_path)
    sia.redis = redis_client
    Recorder(sia)

    async def run() -> None:
        async with sia.detect.test_context() as agent:
            for i in range(6):
                await agent.put(_order(i))
            await asyncio.sleep(0.3)

    asyncio.run(run())
    assert sia.customers.engines[0].engine.observed == 6
    return sia


def test_a_worker_applies_a_new_threshold_and_keeps_what_it_learned(
        tmp_path: Path, redis_client: Any) -> None:
    sia = _worker_with_history(tmp_path, redis_client)
    changed = _files(tmp_path, ("lost_probability: 0.8", "lost_probability: 0.9"))
    published = shared_config.publish(redis_client, "unit", *changed)
    outcome = sia.apply_config(shared_config.fetch(redis_client, "unit"))
    assert outcome.startswith(f"applied {published.version}") and "1 partitions" in outcome
    part = sia.customers.engines[0]
    drift = next(d for d in part.engine.detectors if d.name == "drift")
    assert drift.params.lost_probability == 0.9
    assert part.engine.observed == 6  # what was learned stays
    assert sia.config_version == published.version
    new_partition = sia.customers.make_detectors()  # partitions taken over later, too
    assert next(d for d in new_partition if d.name == "drift").params.lost_probability == 0.9


def test_a_change_to_a_global_threshold_is_refused_with_the_reason(
        tmp_path: Path, redis_client: Any) -> None:
    sia = _worker_with_history(tmp_path, redis_client)
    before = sia.customers.engines[0]
    changed = _files(tmp_path, ("horizon_days: 90.0          # what", "horizon_days: 60.0  # what"))
    published = shared_config.publish(redis_client, "unit", *changed)
    outcome = sia.apply_config(shared_config.fetch(redis_client, "unit"))
    assert outcome.startswith(f"refused {published.version}")
    assert "drift.horizon_days changed from 90.0 to 60.0" in outcome
    assert sia.customers.engines[0] is before  # nothing moved
    assert sia.config_version == published.version  # not tried again until it changes


def test_the_watch_timer_applies_and_reports(tmp_path: Path, redis_client: Any) -> None:
    sia = _worker_with_history(tmp_path, redis_client)
    changed = _files(tmp_path, ("min_confidence: 0.3", "min_confidence: 0.35"))
    published = shared_config.publish(redis_client, "unit", *changed)
    asyncio.run(sia.watch_config())  # what the worker's timer runs
    statuses = {k.decode(): v.decode() for k, v in
                redis_client.hgetall(shared_config.status_key("unit")).items()}
    assert list(statuses.values()) == [statuses[sia.name]]
    assert statuses[sia.name].startswith(f"applied {published.version}")
    stored = json.loads(redis_client.get(shared_config.key("unit")))
    assert stored["version"] == published.version


def test_the_publish_command_validates_publishes_and_shows_status(
        tmp_path: Path, redis_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from sia.cli import app
    from sia.settings import get_settings

    monkeypatch.setenv("SIA_REDIS_URL", kh.redis_url_of(redis_client))
    monkeypatch.setenv("SIA_KAFKA_APP_ID", "clitest")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        broken = _files(tmp_path, ("min_lift: 3.0", "min_lift: lots"))
        result = runner.invoke(app, ["publish-config", "--config", str(broken[0])])
        assert result.exit_code != 0 and "not published" in result.output
        assert "min_lift" in result.output
        assert redis_client.get(shared_config.key("clitest")) is None
        result = runner.invoke(app, ["publish-config", "--config", str(_files(tmp_path)[0])])
        assert result.exit_code == 0, result.output
        version = shared_config.current_version(redis_client, "clitest")
        assert version is not None and f"published version {version}" in result.output
        shared_config.report(redis_client, "clitest", "w1", f"applied {version} to 4 partitions")
        shared_config.report(redis_client, "clitest", "w2", "refused 0123abcd: reasons")
        result = runner.invoke(app, ["publish-config", "--status"])
        assert f"w1: applied {version} to 4 partitions" in result.output
        assert "w2: refused 0123abcd: reasons (an older version)" in result.output
    finally:
        get_settings.cache_clear()


def test_a_published_configuration_loads_without_leaving_files(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    # loaded in memory: each call gives fresh detectors, and no folder is left behind
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    detectors_file, policy_file = _files(tmp_path, ("min_lift: 3.0 ", "min_lift: 3.5 "))
    published = shared_config.Published(
        "v1", detectors_file.read_text(), policy_file.read_text(), "now")
    before = set(tmp_path.iterdir())
    make, policy = published.load()
    assert set(tmp_path.iterdir()) == before
    first, second = make(), make()
    assert [d.name for d in first] == [d.name for d in second]
    assert all(a is not b for a, b in zip(first, second, strict=True))
    cross_sell = next(d for d in first if d.name == "cross_sell")
    assert cross_sell.params.min_lift == 3.5  # type: ignore[attr-defined]
    assert policy == load_policy(policy_file)

