"""Fixtures for the real services the tests use (started by scripts/services.sh)."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

# Faust apps (workers, the agents' tests, the benches) keep their data folder here, not
# as "<app id>-data" in the checkout; subprocess workers inherit it
if "SIA_KAFKA_DATA_DIR" not in os.environ:
    _faust_data = tempfile.mkdtemp(prefix="sia-test-faust-")
    os.environ["SIA_KAFKA_DATA_DIR"] = _faust_data
    atexit.register(shutil.rmtree, _faust_data, ignore_errors=True)

# servers started by the tests warm their preview worker only where a test asks for it
# (tests/api/test_preview_warm.py): dozens of servers each learning its journal again in
# a second process would load the two cores for nothing
os.environ.setdefault("SIA_SERVE_PREVIEW_WARM_SECONDS", "0")


def _unavailable(message: str) -> NoReturn:
    """Fail when the run requires the services (SIA_REQUIRE_SERVICES=1), else skip."""
    if os.environ.get("SIA_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _service(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if url:
        return url
    _unavailable(f"{what} is not running: run `bash scripts/services.sh` and export {variable}")


@pytest.fixture()
def redis_client() -> Iterator[Any]:
    """A real Redis database for one test, emptied before and after."""
    import redis

    client = redis.Redis.from_url(_service("SIA_TEST_REDIS_URL", "Redis"))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


async def _kafka_answers(bootstrap: str) -> str | None:
    """None when the broker returns metadata, else why not."""
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        return None if metadata.brokers() else "no broker in the metadata"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()


@pytest.fixture(scope="session")
def kafka_broker() -> str:
    """The URL of a real Kafka broker that answers, e.g. "kafka://127.0.0.1:19092"."""
    url = _service("SIA_TEST_KAFKA_BROKER", "Kafka")
    bootstrap = url.removeprefix("kafka://")
    problem = asyncio.run(_kafka_answers(bootstrap))
    if problem:
        _unavailable(f"Kafka at {url} does not answer ({problem}): run `bash scripts/services.sh`")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The SQLAlchemy URL of a real PostgreSQL database that accepts connections."""
    from sqlalchemy import create_engine, text

    url = _service("SIA_TEST_DATABASE_URL", "PostgreSQL")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        _unavailable(f"PostgreSQL at {url} does not answer ({type(exc).__name__}: {exc}): "
                     "run `bash scripts/services.sh`")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The path of a Chromium that runs (Debian's, installed by scripts/services.sh), with
    Playwright importable to drive it."""
    path = os.environ.get("SIA_TEST_CHROMIUM")
    if not path:
        _unavailable("no Chromium for the browser tests: run `bash scripts/services.sh` "
                     "and export SIA_TEST_CHROMIUM")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        _unavailable(f"no Chromium at SIA_TEST_CHROMIUM={path}: run `bash scripts/services.sh`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[test]'")
    return path
