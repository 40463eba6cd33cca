"""Fixtures for the real services the tests use (started by scripts/services.sh)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def _service(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if url:
        return url
    message = f"{what} is not running: run `bash scripts/services.sh` and export {variable}"
    if os.environ.get("SIA_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture()
def redis_client() -> Iterator[Any]:
    """A real Redis database for one test, emptied before and after."""
    import redis

    client = redis.Redis.from_url(_service("SIA_TEST_REDIS_URL", "Redis"))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
